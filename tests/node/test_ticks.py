"""Long jobs run on the pool: the connection outlives a short net_ticktime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mirage.etf import Atom
from tests.node.helpers import PyNode, erl, start_node, stop

TICKTIME = 2  # seconds: the VM drops a peer silent for about this long


@pytest.fixture(scope="module")
def slow_node(
    tmp_path_factory: pytest.TempPathFactory, epmd_port: int, cookie_file: Path
) -> Iterator[PyNode]:
    started = start_node(
        tmp_path_factory.mktemp("slow"),
        epmd_port,
        cookie=cookie_file,
        module="tests.node.fixture_node",
        extra=["--jobs", "2"],
    )
    try:
        yield started
    finally:
        stop(started.proc)


def test_job_longer_than_net_ticktime_keeps_the_connection(
    slow_node: PyNode, epmd_port: int
) -> None:
    busy_ms = 3 * TICKTIME * 1000
    reply = erl(
        "ok = net_kernel:monitor_nodes(true, [{node_type, all}]), "
        f"M = {{mirage, {slow_node.atom}}}, "
        "{ok, _, _, _} = gen_server:call(M, {call, formats, nil, #{}}), "
        "T0 = erlang:monotonic_time(millisecond), "
        f"R = gen_server:call(M, {{call, formats, nil, #{{busy_ms => {busy_ms}}}}}, infinity), "
        "Took = erlang:monotonic_time(millisecond) - T0, "
        "Down = receive {nodedown, _, _} = D -> D after 0 -> none end, "
        f"Still = lists:member({slow_node.atom}, nodes(hidden)), "
        f"{{element(1, R), Took >= {busy_ms}, Down, Still}}",
        epmd_port,
        extra=["-kernel", "net_ticktime", str(TICKTIME)],
    )
    assert reply == (Atom("ok"), True, Atom("none"), True)


def test_other_requests_are_served_during_a_long_job(slow_node: PyNode, epmd_port: int) -> None:
    # Two pool threads: a quick call made while a long one runs answers first.
    reply = erl(
        f"M = {{mirage, {slow_node.atom}}}, Self = self(), "
        "spawn(fun() -> "
        "R = gen_server:call(M, {call, formats, nil, #{busy_ms => 3000}}, infinity), "
        "Self ! {slow, element(1, R)} end), "
        "timer:sleep(300), "
        "{ok, _, _, _} = gen_server:call(M, {call, formats, nil, #{}}), "
        "First = receive {slow, _} -> slow_first after 0 -> quick_first end, "
        "Slow = receive {slow, S} -> S after 10000 -> timeout end, "
        "{First, Slow}",
        epmd_port,
    )
    assert reply == (Atom("quick_first"), Atom("ok"))


def test_sigterm_during_a_job_exits_cleanly(
    epmd_port: int, cookie_file: Path, tmp_path: Path
) -> None:
    node = start_node(tmp_path, epmd_port, cookie=cookie_file, module="tests.node.fixture_node")
    try:
        reply = erl(
            f"M = {{mirage, {node.atom}}}, Self = self(), "
            "spawn(fun() -> "
            "R = (catch gen_server:call(M, {call, formats, nil, #{busy_ms => 2000}}, 20000)), "
            "Self ! {slow, R} end), "
            "timer:sleep(500), "
            f'os:cmd("kill -TERM {node.proc.pid}"), '
            "receive {slow, {'EXIT', {Reason, _}}} -> Reason after 20000 -> timeout end",
            epmd_port,
        )
        assert reply == (Atom("nodedown"), Atom(node.name))
        assert node.proc.wait(20) == 0
        assert "Traceback" not in node.log()
    finally:
        stop(node.proc)
