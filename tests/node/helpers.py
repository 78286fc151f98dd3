"""Helpers for the node tests: Python nodes and short-lived Erlang nodes as OS processes.

Whoever starts a process here stops it (the fixtures in conftest.py, or the test).
"""

from __future__ import annotations

import base64
import itertools
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirage import etf

REPO_ROOT = Path(__file__).resolve().parents[2]
ERL = shutil.which("erl")
EPMD = shutil.which("epmd")
NO_ERLANG = "Erlang not installed (erl or epmd not on PATH)"
HOST = socket.gethostname().split(".")[0]
COOKIE = "mirage-node-test-cookie"
WRONG_COOKIE = "not-the-cookie"
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A node name (the part before @) that no concurrent test run uses."""
    return f"{prefix}{os.getpid()}_{next(_names)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process the suite started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def epmd_names(epmd_port: int) -> str:
    assert EPMD is not None
    return subprocess.run(
        [EPMD, "-port", str(epmd_port), "-names"], capture_output=True, text=True, check=False
    ).stdout


@dataclass
class PyNode:
    """A running ``python -m mirage.node`` (or a test variant of it)."""

    proc: subprocess.Popen[bytes]
    name: str
    port: int
    log_path: Path

    @property
    def atom(self) -> str:
        """The node name as an Erlang atom literal."""
        return f"'{self.name}'"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_node(
    tmp_path: Path,
    epmd_port: int,
    *,
    cookie: Path | None,
    module: str = "mirage.node",
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> PyNode:
    """Start a node and wait for its ready line; the caller must :func:`stop` it."""
    name = f"{unique('mirage')}@{HOST}"
    log_path = tmp_path / f"{name}.log"
    argv = [sys.executable, "-m", module, "--name", name, *extra]
    if cookie is not None:
        argv += ["--cookie-file", str(cookie)]
    full_env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port), **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=log
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith(f"mirage.node ready {name} port="):
        stop(proc)
        raise AssertionError(f"node did not start: {line!r}\n{log_path.read_text()}")
    return PyNode(proc, name, int(line.rsplit("port=", 1)[1]), log_path)


def erl_command(
    epmd_port: int, cookie: str, extra: Sequence[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """argv and environment for an ``erl -sname`` node on the suite's EPMD."""
    assert ERL is not None
    argv = [ERL, "-sname", unique("t"), "-setcookie", cookie, "-noshell", "-noinput", *extra]
    # No crash dumps left behind by a failing test.
    return argv, {**os.environ, "ERL_EPMD_PORT": str(epmd_port), "ERL_CRASH_DUMP_SECONDS": "0"}


def erl(
    script: str,
    epmd_port: int,
    *,
    cookie: str = COOKIE,
    extra: Sequence[str] = (),
    timeout: float = 60,
) -> Any:
    """Evaluate Erlang ``script`` (expressions; the last is the result) on a fresh node.

    The result comes back through ``term_to_binary`` and mirage.etf; an exception
    comes back as ``{crashed, Class, Reason}``.
    """
    wrapped = (
        "MirageTestResult = try begin " + script + " end catch C:E -> {crashed, C, E} end, "
        'io:format("~nRESULT:~s~n", [base64:encode(term_to_binary(MirageTestResult))]), halt().'
    )
    argv, env = erl_command(epmd_port, cookie, extra)
    done = subprocess.run(
        [*argv, "-eval", wrapped], env=env, capture_output=True, timeout=timeout, check=False
    )
    output = done.stdout.decode(errors="replace")
    marked = output.rpartition("RESULT:")[2].split()
    assert marked, f"erl gave no result:\n{output}\n{done.stderr.decode(errors='replace')}"
    return etf.decode(base64.b64decode(marked[0]), improper_lists=True)


def listening_erl(
    epmd_port: int, cookie: str, tmp_path: Path, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """An erl node that reports the first node to connect to it and calls it back.

    Prints ``ready``, then ``up NODE INFO ok`` or ``no connection``, then halts; the
    caller must :func:`stop` it.
    """
    out = tmp_path / "erl.out"
    argv, env = erl_command(epmd_port, cookie, extra)
    script = (
        "ok = net_kernel:monitor_nodes(true, [{node_type, all}]), "
        'io:format("ready~n"), '
        "receive {nodeup, N, Info} -> "
        "  R = gen_server:call({mirage, N}, {call, formats, nil, #{}}), "
        '  io:format("up ~s ~p ~p~n", [N, Info, element(1, R)]) '
        'after 8000 -> io:format("no connection~n") end, halt().'
    )
    with out.open("wb") as fh:
        proc = subprocess.Popen([*argv, "-eval", script], env=env, stdout=fh)
    wait_for(lambda: "ready" in out.read_text(), what="erl to start")
    return proc, f"{argv[2]}@{HOST}", out
