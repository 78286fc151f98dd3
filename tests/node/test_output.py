"""What the node's C libraries write to file descriptors 1 and 2 reaches its log."""

from __future__ import annotations

import select
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirage.etf import Atom
from tests.node.helpers import PyNode, erl, start_node, stop, wait_for


@pytest.fixture(scope="module")
def noisy_node(
    tmp_path_factory: pytest.TempPathFactory, epmd_port: int, cookie_file: Path
) -> Iterator[PyNode]:
    # start_node also checks that the first line on stdout is the ready line.
    started = start_node(
        tmp_path_factory.mktemp("noisy"),
        epmd_port,
        cookie=cookie_file,
        module="tests.node.fixture_node",
    )
    try:
        yield started
    finally:
        stop(started.proc)


def test_c_output_reaches_the_log_capped_and_never_stdout(
    noisy_node: PyNode, epmd_port: int
) -> None:
    reply = erl(
        f"R = gen_server:call({{mirage, {noisy_node.atom}}}, "
        "{call, formats, nil, #{c_lines => 30}}), element(1, R)",
        epmd_port,
    )
    assert reply == Atom("ok")
    summary = "10 more lines written to the output by C code suppressed"
    wait_for(lambda: summary in noisy_node.log(), what="the suppressed-lines summary")
    log = noisy_node.log().splitlines()
    assert "mirage.node INFO C out" in log
    assert [line for line in log if "C line" in line] == [
        f"mirage.node ERROR C line {i}" for i in range(20)
    ]
    assert noisy_node.proc.stdout is not None
    assert select.select([noisy_node.proc.stdout], [], [], 0)[0] == []  # only the ready line
