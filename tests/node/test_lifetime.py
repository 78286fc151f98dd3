"""Images made over a connection go when it does (a node run in this process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirage.node.backend import ServerBackend
from mirage.node.node import Config, Node
from tests.conftest import gradient
from tests.node.helpers import COOKIE, HOST, erl, unique, wait_for

FROM_BYTES = "{call, from_bytes, Bin, #{max_pixels => 100000000, allowed_formats => [png]}}"


@dataclass
class InProcessNode:
    node: Node
    backend: ServerBackend
    atom: str


@pytest.fixture
def in_process(epmd_port: int) -> Iterator[InProcessNode]:
    backend = ServerBackend()
    name = f"{unique('inproc')}@{HOST}"
    node = Node(Config(name=name, cookie=COOKIE.encode(), epmd_port=epmd_port), backend)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(node.start(), loop).result(10)
    try:
        yield InProcessNode(node, backend, f"'{name}'")
    finally:
        asyncio.run_coroutine_threadsafe(node.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_disconnect_releases_the_callers_images(
    in_process: InProcessNode, epmd_port: int, tmp_path: Path
) -> None:
    source = tmp_path / "source.png"
    gradient((8, 8)).save(source)
    reply = erl(
        f'{{ok, Bin}} = file:read_file("{source}"), M = {{mirage, {in_process.atom}}}, '
        f"{{ok, nil, {{A, png, 8, 8}}, nil}} = gen_server:call(M, {FROM_BYTES}), "
        f"{{ok, nil, {{B, png, 8, 8}}, nil}} = gen_server:call(M, {FROM_BYTES}), "
        "A =/= B",
        epmd_port,
    )
    assert reply is True
    # erl has halted: its connection closed, and with it both images.
    wait_for(lambda: in_process.backend.service.live_handles() == 0, what="images released")
    assert not in_process.node.connections
