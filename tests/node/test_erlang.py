"""The node against real ``erl -sname`` nodes: calls, casts, monitors, cookies, hiding."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

from mirage import image
from mirage.etf import Atom
from tests.conftest import gradient
from tests.node.helpers import (
    COOKIE,
    EPMD,
    NO_ERLANG,
    REPO_ROOT,
    WRONG_COOKIE,
    PyNode,
    epmd_names,
    erl,
    free_port,
    listening_erl,
    start_node,
    stop,
    wait_for,
)

OK, ERROR, NIL = Atom("ok"), Atom("error"), None
INTERNAL_ERROR = (ERROR, Atom("internal_error"))
LIMITS = "max_pixels => 100000000, allowed_formats => [jpg, png, gif, webp, bmp, tiff]"


def test_formats_call_gets_the_formats(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"gen_server:call({{mirage, {node.atom}}}, {{call, formats, nil, #{{}}}})", epmd_port
    )
    expected = {Atom(k): [Atom(f) for f in v] for k, v in image.formats().items()}
    assert reply == (OK, NIL, NIL, expected)


def test_thumbnail_round_trip(node: PyNode, epmd_port: int, tmp_path: Path) -> None:
    source = tmp_path / "source.png"
    gradient((64, 48)).save(source)
    reply = erl(
        f'{{ok, Bin}} = file:read_file("{source}"), '
        f"gen_server:call({{mirage, {node.atom}}}, "
        f"{{call, thumbnail, Bin, #{{width => 16, height => 12, {LIMITS}}}}})",
        epmd_port,
    )
    assert isinstance(reply, tuple) and reply[0] == OK, reply
    _, data, held, term = reply
    assert held[1:] == (Atom("png"), 16, 12) and held[0] > 0
    assert term is None
    out = PILImage.open(io.BytesIO(data))
    assert (out.format, out.size) == ("PNG", (16, 12))


def test_held_image_by_handle_then_released(node: PyNode, epmd_port: int, tmp_path: Path) -> None:
    source = tmp_path / "source.png"
    gradient((40, 30)).save(source)
    reply = erl(
        f'{{ok, Bin}} = file:read_file("{source}"), M = {{mirage, {node.atom}}}, '
        f"{{ok, nil, {{H, png, 40, 30}}, nil}} = "
        f"gen_server:call(M, {{call, from_bytes, Bin, #{{{LIMITS}}}}}), "
        "Again = gen_server:call(M, "
        f"{{call, to_bytes, {{handle, H}}, #{{format => jpg, {LIMITS}}}}}), "
        "gen_server:cast(M, {release, [H]}), "
        f"Gone = gen_server:call(M, {{call, to_bytes, {{handle, H}}, #{{{LIMITS}}}}}), "
        "{Again, Gone}",
        epmd_port,
    )
    (status, data, held, _), gone = reply
    assert (status, held) == (OK, NIL)
    assert PILImage.open(io.BytesIO(data)).format == "JPEG"
    assert gone == Atom("released")


def test_bad_image_is_a_reason_not_a_crash(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"gen_server:call({{mirage, {node.atom}}}, "
        f'{{call, info, <<"not an image">>, #{{{LIMITS}}}}})',
        epmd_port,
    )
    assert reply == (ERROR, Atom("unsupported_image_format"))


def test_unknown_op_and_malformed_requests_get_error_replies(node: PyNode, epmd_port: int) -> None:
    requests = [
        "{call, no_such_op, nil, #{}}",  # unknown operation
        "{call, formats, nil, not_a_map}",  # args not a map
        "{call, formats, 42, #{}}",  # source neither binary, handle nor nil
        '{call, "formats", nil, #{}}',  # op not an atom
        "{call, formats}",
        "hello",
        "{call, formats, nil, #{f => fun() -> ok end}}",  # a closure: undecodable here
        "{call, formats, nil, #{b => <<1:3>>}}",  # a bitstring: undecodable here
    ]
    script = ", ".join(
        f"R{i} = (catch gen_server:call({{mirage, {node.atom}}}, {r}, 10000))"
        for i, r in enumerate(requests)
    )
    names = ", ".join(f"R{i}" for i in range(len(requests)))
    replies = erl(
        f"{script}, Ok = gen_server:call({{mirage, {node.atom}}}, {{call, formats, nil, #{{}}}}), "
        f"{{[{names}], element(1, Ok)}}",
        epmd_port,
    )
    assert replies == ([INTERNAL_ERROR] * len(requests), OK)
    assert node.alive()


def test_unknown_handle_answers_released(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"gen_server:call({{mirage, {node.atom}}}, {{call, to_bytes, {{handle, 987654}}, #{{}}}})",
        epmd_port,
    )
    assert reply == Atom("released")


def test_other_messages_are_ignored_and_the_node_stays_up(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"M = {{mirage, {node.atom}}}, "
        "M ! hello, M ! {'$gen_cast', nonsense}, M ! {'$gen_call', not_a_from, x}, "
        "gen_server:cast(M, {release, [1, 2, not_a_handle]}), "
        "gen_server:cast(M, {release_owner, self()}), "
        "element(1, gen_server:call(M, {call, formats, nil, #{}}))",
        epmd_port,
    )
    assert reply == OK
    assert node.alive()


def test_tag_is_echoed_as_given(node: PyNode, epmd_port: int) -> None:
    # A plain reference (the pre-OTP 24 shape) and gen's own [alias | Ref].
    reply = erl(
        "Ref = make_ref(), "
        f"{{mirage, {node.atom}}} ! "
        "{'$gen_call', {self(), Ref}, {call, formats, nil, #{}}}, "
        "Plain = receive {Ref, R1} -> element(1, R1) after 5000 -> timeout end, "
        "Tag = [alias | Ref], "
        f"{{mirage, {node.atom}}} ! {{'$gen_call', {{self(), Tag}}, {{call, nope, nil, #{{}}}}}}, "
        "Alias = receive {[alias | Ref], R2} -> R2 after 5000 -> timeout end, "
        "{Plain, Alias}",
        epmd_port,
    )
    assert reply == (OK, INTERNAL_ERROR)


def test_monitors(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"Ref = erlang:monitor(process, {{nobody, {node.atom}}}), "
        "Unknown = receive {'DOWN', Ref, process, _, Reason} -> Reason after 5000 -> none end, "
        f"Ref2 = erlang:monitor(process, {{mirage, {node.atom}}}), "
        "Known = receive {'DOWN', Ref2, process, _, R2} -> R2 after 500 -> no_down end, "
        "true = erlang:demonitor(Ref2, [flush]), "
        f"Call = (catch gen_server:call({{nobody, {node.atom}}}, x, 5000)), "
        "{Unknown, Known, element(1, element(2, Call))}",
        epmd_port,
    )
    assert reply == (Atom("noproc"), Atom("no_down"), Atom("noproc"))


def test_node_is_hidden(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"pong = net_adm:ping({node.atom}), "
        f"{{lists:member({node.atom}, nodes()), lists:member({node.atom}, nodes(hidden))}}",
        epmd_port,
    )
    assert reply == (False, True)


def test_wrong_cookie_is_refused_incoming(node: PyNode, epmd_port: int) -> None:
    reply = erl(
        f"Ping = net_adm:ping({node.atom}), "
        f"Call = (catch gen_server:call({{mirage, {node.atom}}}, {{call, formats, nil, #{{}}}})), "
        "{Ping, element(1, element(2, Call))}",
        epmd_port,
        cookie=WRONG_COOKIE,
    )
    assert reply == (Atom("pang"), (Atom("nodedown"), Atom(node.name)))
    assert "does not know the cookie" in node.log()
    assert node.alive()


def test_outgoing_connection_with_the_cookie(
    epmd_port: int, cookie_file: Path, tmp_path: Path
) -> None:
    proc, target, out = listening_erl(epmd_port, COOKIE, tmp_path)
    try:
        node = start_node(tmp_path, epmd_port, cookie=cookie_file, extra=["--connect", target])
        try:
            wait_for(lambda: proc.poll() is not None, timeout=20, what="erl to finish")
            assert f"up {node.name} [{{node_type,hidden}}] ok" in out.read_text()
        finally:
            stop(node.proc)
    finally:
        stop(proc)


def test_wrong_cookie_is_refused_outgoing(
    epmd_port: int, cookie_file: Path, tmp_path: Path
) -> None:
    proc, target, out = listening_erl(epmd_port, WRONG_COOKIE, tmp_path)
    try:
        node = start_node(tmp_path, epmd_port, cookie=cookie_file, extra=["--connect", target])
        try:
            wait_for(lambda: "different cookie" in node.log(), timeout=20, what="refusal")
            wait_for(lambda: proc.poll() is not None, timeout=20, what="erl to finish")
            assert "no connection" in out.read_text()
            assert node.alive()
        finally:
            stop(node.proc)
    finally:
        stop(proc)


def test_cookie_from_the_environment(epmd_port: int, tmp_path: Path) -> None:
    node = start_node(tmp_path, epmd_port, cookie=None, env={"MIRAGE_COOKIE": COOKIE})
    try:
        reply = erl(
            f"element(1, gen_server:call({{mirage, {node.atom}}}, {{call, formats, nil, #{{}}}}))",
            epmd_port,
        )
        assert reply == OK
        assert COOKIE not in " ".join(map(str, node.proc.args))  # type: ignore[arg-type]
    finally:
        stop(node.proc)


def test_sigterm_unregisters_and_exits_cleanly(
    epmd_port: int, cookie_file: Path, tmp_path: Path
) -> None:
    node = start_node(tmp_path, epmd_port, cookie=cookie_file)
    alive = node.name.partition("@")[0]
    try:
        assert f"name {alive} at port {node.port}" in epmd_names(epmd_port)
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(10) == 0
        assert f"name {alive} " not in epmd_names(epmd_port)
        assert "Traceback" not in node.log()
    finally:
        stop(node.proc)


def test_large_messages_both_ways(node: PyNode, epmd_port: int, tmp_path: Path) -> None:
    # Noise does not compress: a source and a reply of about a megabyte each.
    source = tmp_path / "noise.png"
    PILImage.frombytes("RGB", (600, 600), random.Random(7).randbytes(600 * 600 * 3)).save(source)
    assert source.stat().st_size > 1_000_000
    reply = erl(
        f'{{ok, Bin}} = file:read_file("{source}"), '
        f"gen_server:call({{mirage, {node.atom}}}, "
        f"{{call, thumbnail, Bin, #{{width => 600, height => 600, {LIMITS}}}}})",
        epmd_port,
    )
    status, data, (_, fmt, width, height), _ = reply
    assert (status, fmt, width, height) == (OK, Atom("png"), 600, 600)
    assert len(data) > 1_000_000
    assert PILImage.open(io.BytesIO(data)).size == (600, 600)


def test_a_name_already_registered_is_refused(node: PyNode, epmd_port: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mirage.node", "--name", node.name],
        cwd=REPO_ROOT,
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port), "MIRAGE_COOKIE": COOKIE},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "refused to register" in done.stderr
    assert done.stdout == ""
    assert node.alive()


def test_losing_epmd_stops_the_node(cookie_file: Path, tmp_path: Path) -> None:
    # Its own EPMD, as this one is stopped: the name is gone, so the node exits (1)
    # for its supervisor to start it again.
    if EPMD is None:
        pytest.skip(NO_ERLANG)
    port = free_port()
    epmd = subprocess.Popen([EPMD, "-port", str(port)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "up and running" in epmd_names(port), what="epmd")
        node = start_node(tmp_path, port, cookie=cookie_file)
        try:
            stop(epmd)
            assert node.proc.wait(10) == 1
            assert "EPMD closed the registration" in node.log()
        finally:
            stop(node.proc)
    finally:
        stop(epmd)


def test_concurrent_callers_each_get_their_own_reply(
    node: PyNode, epmd_port: int, tmp_path: Path
) -> None:
    sources = tmp_path / "sizes"
    sources.mkdir()
    for width in range(1, 61):
        gradient((width, 3)).save(sources / f"{width}.png")
    reply = erl(
        f"M = {{mirage, {node.atom}}}, Self = self(), "
        "Ws = lists:seq(1, 60), "
        "[spawn(fun() -> "
        f'  {{ok, Bin}} = file:read_file("{sources}/" ++ integer_to_list(W) ++ ".png"), '
        f"  {{ok, nil, nil, Info}} = gen_server:call(M, {{call, info, Bin, #{{{LIMITS}}}}}), "
        "  Self ! {W, maps:get(width, Info)} end) || W <- Ws], "
        "[receive {W, Got} -> Got after 30000 -> timeout end || W <- Ws]",
        epmd_port,
    )
    assert reply == list(range(1, 61))
