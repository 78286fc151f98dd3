"""Fixtures for the node tests: a private EPMD, a cookie, a Python node per module.

EPMD runs on a port of its own (passed to ``erl`` and the Python node as
``ERL_EPMD_PORT``), so these tests neither need nor disturb a system EPMD. Every
process started here is stopped here.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.helpers import (
    COOKIE,
    EPMD,
    ERL,
    NO_ERLANG,
    PyNode,
    free_port,
    start_node,
    stop,
    wait_for,
)


@pytest.fixture(scope="session")
def epmd_port() -> Iterator[int]:
    if ERL is None or EPMD is None:
        pytest.skip(NO_ERLANG)
    port = free_port()
    proc = subprocess.Popen([EPMD, "-port", str(port)], stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, what="epmd")
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def cookie_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cookie") / "cookie"
    path.write_text(COOKIE + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, epmd_port: int, cookie_file: Path
) -> Iterator[PyNode]:
    started = start_node(tmp_path_factory.mktemp("node"), epmd_port, cookie=cookie_file)
    try:
        yield started
    finally:
        stop(started.proc)
