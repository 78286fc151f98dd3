"""``python -m mirage.port`` as the VM runs it: a child process with pipes on fds 3 and 4."""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mirage import buffers, etf, ops
from mirage.etf import Atom, Pid
from mirage.framing import FrameWriter
from mirage.server import handle
from mirage.service import Service

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "samples" / "rocket.jpg").read_bytes()
HEADER = struct.Struct(">I")
# A guard against a hung child, not a timing assertion: every read gives up after it.
GUARD = 60.0

OK, ERROR, NIL, LOG = Atom("ok"), Atom("error"), None, Atom("log")
ME = Pid(Atom("test@host"), 1, 0, 0)
OTHER = Pid(Atom("test@host"), 2, 0, 0)
LIMITS = {Atom("max_pixels"): 50_000_000, Atom("allowed_formats"): [Atom("jpg"), Atom("png")]}


def high_fd(fd: int) -> int:
    """``fd`` moved above 10, so dup2 onto 3 and 4 in the child cannot clobber it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Worker:
    """The port program with the VM's view of it: frames to fd 3, frames from fd 4."""

    def __init__(self, args: Sequence[str] = (), prelude: str | None = None) -> None:
        child_in, self.to_child = (high_fd(fd) for fd in os.pipe())
        self.from_child, child_out = (high_fd(fd) for fd in os.pipe())

        def on_fds_3_and_4() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        command = [sys.executable, "-m", "mirage.port", *args]
        if prelude is not None:  # code to run in the child first (a fake operation)
            command = [sys.executable, "-c", f"{prelude}\nimport mirage.port\nmirage.port.main()"]
            command += list(args)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            command, env=env, pass_fds=(3, 4), preexec_fn=on_fds_3_and_4, cwd=ROOT
        )
        os.close(child_in)
        os.close(child_out)
        self.writer = FrameWriter(self.to_child)
        self.logs: list[tuple[int, bytes]] = []

    def send(self, term: object) -> None:
        self.writer.write([etf.encode(term)])

    def send_raw(self, data: bytes) -> None:
        os.write(self.to_child, data)

    def read_exactly(self, size: int) -> bytes:
        """``size`` bytes of output (fewer only at its end), unbuffered, so that
        select() sees every byte not yet read."""
        chunks = []
        while size:
            readable, _, _ = select.select([self.from_child], [], [], GUARD)
            assert readable, f"no output within {GUARD} s"
            chunk = os.read(self.from_child, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def frame(self) -> object | None:
        """The next frame decoded (None at end of output)."""
        header = self.read_exactly(HEADER.size)
        if not header:
            return None
        (size,) = HEADER.unpack(header)
        data = self.read_exactly(size)
        assert len(data) == size, "output ended inside a frame"
        return etf.decode(data)

    def reply(self) -> object:
        """The next frame that is not a log line (those are kept in ``logs``)."""
        while True:
            term = self.frame()
            assert term is not None, "the program exited instead of answering"
            if isinstance(term, tuple) and len(term) == 3 and term[0] == LOG:
                self.logs.append((term[1], term[2]))
                continue
            return term

    def log_line(self) -> tuple[int, bytes]:
        """The next frame, which must be a log line, as ``(level, line)``."""
        term = self.frame()
        assert isinstance(term, tuple) and len(term) == 3 and term[0] == LOG, term
        return (term[1], term[2])

    def call(self, request_id: int, op: str, source: object, args: dict[Atom, object]) -> object:
        self.send((request_id, Atom(op), source, {**LIMITS, **args}, ME))
        answer = self.reply()
        assert isinstance(answer, tuple) and answer[0] == request_id, answer
        return answer[1]

    def close_input(self) -> int:
        os.close(self.to_child)
        self.to_child = -1
        return self.process.wait(timeout=GUARD)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                os.close(fd)


@pytest.fixture
def worker() -> Iterator[Worker]:
    started = Worker()
    try:
        yield started
    finally:
        started.stop()


def held(reply: object) -> tuple[int, Atom, int, int]:
    assert isinstance(reply, tuple) and reply[0] == OK and reply[1] is None, reply
    image = reply[2]
    assert isinstance(image, tuple)
    return image  # type: ignore[return-value]


# --- requests -----------------------------------------------------------------------------


def test_formats(worker: Worker) -> None:
    expected = ops.formats(None, {}).term
    assert worker.call(1, "formats", NIL, {}) == (OK, NIL, NIL, expected)


def test_info(worker: Worker) -> None:
    expected = etf.decode(etf.encode(ops.info(SAMPLE, LIMITS).term))  # as it crosses
    assert worker.call(2, "info", SAMPLE, {}) == (OK, NIL, NIL, expected)


def test_thumbnail_bytes_are_the_in_process_bytes(worker: Worker) -> None:
    args = {Atom("width"): 64, Atom("height"): 48, Atom("format"): Atom("png")}
    outcome = ops.thumbnail(SAMPLE, {**LIMITS, **args})
    assert outcome.data is not None
    expected = outcome.data.to_bytes()
    reply = worker.call(3, "thumbnail", SAMPLE, args)
    assert isinstance(reply, tuple) and reply[:2] == (OK, expected)


def test_large_reply_crosses_whole(worker: Worker) -> None:
    # Over the 64 KiB at which frames are written in parts.
    args = {Atom("width"): 600, Atom("height"): 600, Atom("format"): Atom("png")}
    # Over the pixels at which the encoder writes into a memfd, streamed by sendfile.
    assert 600 * 600 > buffers.MEMFD_ABOVE
    outcome = ops.thumbnail(SAMPLE, {**LIMITS, **args})
    assert outcome.data is not None
    expected = outcome.data.to_bytes()
    reply = worker.call(4, "thumbnail", SAMPLE, args)
    assert isinstance(reply, tuple) and reply[0] == OK
    assert len(expected) > 64 * 1024 and reply[1] == expected


def test_held_image_chain_then_release(worker: Worker) -> None:
    handle, image_format, width, height = held(worker.call(5, "from_bytes", SAMPLE, {}))
    assert image_format == Atom("jpg") and width > 0 and height > 0
    source = (Atom("handle"), handle)
    crop = {Atom("x"): 0, Atom("y"): 0, Atom("width"): 10, Atom("height"): 8}
    cropped, _, w, h = held(worker.call(6, "crop", source, crop))
    assert (w, h) == (10, 8) and cropped != handle
    png = worker.call(7, "to_bytes", (Atom("handle"), cropped), {Atom("format"): Atom("png")})
    assert isinstance(png, tuple) and png[0] == OK and png[1].startswith(b"\x89PNG")
    worker.send((Atom("release"), [handle]))  # no reply
    assert worker.call(8, "crop", source, crop) == Atom("released")
    assert worker.call(9, "crop", (Atom("handle"), cropped), crop)[0] == OK  # type: ignore[index]


def test_release_owner_releases_only_that_owners_images(worker: Worker) -> None:
    mine, _, _, _ = held(worker.call(10, "from_bytes", SAMPLE, {}))
    worker.send((11, Atom("from_bytes"), SAMPLE, LIMITS, OTHER))
    reply = worker.reply()
    assert isinstance(reply, tuple) and reply[0] == 11
    theirs, _, _, _ = held(reply[1])
    worker.send((Atom("release_owner"), ME))  # no reply
    flip = {Atom("direction"): Atom("horizontal")}
    assert worker.call(12, "flip", (Atom("handle"), mine), flip) == Atom("released")
    assert worker.call(13, "flip", (Atom("handle"), theirs), flip)[0] == OK  # type: ignore[index]


def test_live_handles_counts_the_images_held(worker: Worker) -> None:
    assert worker.call(14, "live_handles", NIL, {}) == (OK, NIL, NIL, 0)
    first, _, _, _ = held(worker.call(15, "from_bytes", SAMPLE, {}))
    held(worker.call(16, "from_bytes", SAMPLE, {}))
    assert worker.call(17, "live_handles", NIL, {}) == (OK, NIL, NIL, 2)
    worker.send((Atom("release"), [first]))
    assert worker.call(18, "live_handles", NIL, {}) == (OK, NIL, NIL, 1)


def test_ids_are_echoed_and_replies_come_in_order(worker: Worker) -> None:
    ids = [0, 7, 2**31, -5, 2**80]
    for request_id in ids:
        worker.send((request_id, Atom("formats"), NIL, LIMITS, ME))
    answers = [worker.reply() for _ in ids]
    assert [a[0] for a in answers] == ids  # type: ignore[index]


def test_bad_image_is_an_error_reply(worker: Worker) -> None:
    assert worker.call(14, "info", b"not an image", {}) == (ERROR, Atom("unsupported_image_format"))
    # The program goes on serving.
    assert worker.call(15, "formats", NIL, {})[0] == OK  # type: ignore[index]


# --- the end of input, and frames that are not the protocol --------------------------------


def test_end_of_input_ends_the_program(worker: Worker) -> None:
    assert worker.call(16, "formats", NIL, {})[0] == OK  # type: ignore[index]
    assert worker.close_input() == 0


def test_end_of_input_mid_frame_ends_the_program(worker: Worker) -> None:
    worker.send_raw(HEADER.pack(100) + b"\x83")
    assert worker.close_input() == 2


@pytest.mark.parametrize(
    "frame",
    [
        b"garbage",  # not ETF
        b"\x83",  # truncated ETF
        etf.encode([1, 2]),  # not a tuple
        etf.encode((1, 2, 3)),  # no such message
        etf.encode((b"1", Atom("formats"), NIL, LIMITS, ME)),  # no integer id
        etf.encode((Atom("release"), [Atom("x")])),  # handles not integers
    ],
    ids=["garbage", "truncated", "list", "triple", "binary_id", "release_atoms"],
)
def test_a_frame_outside_the_protocol_is_logged_then_the_program_exits(
    worker: Worker, frame: bytes
) -> None:
    worker.send_raw(HEADER.pack(len(frame)) + frame)
    term = worker.frame()
    assert isinstance(term, tuple) and term[:2] == (LOG, 3), term
    assert b"bad frame" in term[2]
    assert worker.frame() is None  # no reply: the output ends
    assert worker.process.wait(timeout=GUARD) == 2


@pytest.mark.parametrize(
    ("op", "source", "args"),
    [
        ("formats", NIL, []),  # args not a map
        ("formats", NIL, 5),
        (b"formats", NIL, LIMITS),  # op not an atom
        ("info", (Atom("handle"), Atom("x")), LIMITS),  # no such source
        ("info", 5, LIMITS),
        ("no_such_op", NIL, LIMITS),
    ],
    ids=["args_list", "args_int", "op_binary", "handle_atom", "source_int", "unknown_op"],
)
def test_a_malformed_request_with_an_id_gets_an_error_reply(
    worker: Worker, op: str | bytes, source: object, args: object
) -> None:
    worker.send((27, Atom(op) if isinstance(op, str) else op, source, args, ME))
    reply = worker.reply()
    assert isinstance(reply, tuple) and reply[0] == 27
    assert isinstance(reply[1], tuple) and reply[1][0] == ERROR, reply
    assert worker.call(28, "formats", NIL, {})[0] == OK  # type: ignore[index]


# --- output as log frames -----------------------------------------------------------------

NOISY_OP = """
import os, sys, warnings
from mirage import ops

def noisy(source, args):
    print("from print")
    print("to stderr", file=sys.stderr)
    warnings.warn("a warning")
    os.write(1, b"from fd 1\\n")
    os.write(2, b"from fd 2\\n")
    return ops.Outcome(term=Atom("done"))

from mirage.etf import Atom
ops.OPS["noisy"] = noisy
"""


def test_output_becomes_log_frames() -> None:
    worker = Worker(prelude=NOISY_OP)
    try:
        assert worker.call(17, "noisy", NIL, {}) == (OK, NIL, NIL, Atom("done"))
        # Lines written to fds 1 and 2 travel through a pipe and a thread: wait for them.
        while len(worker.logs) < 5:
            term = worker.frame()
            assert isinstance(term, tuple) and term[0] == LOG, term
            worker.logs.append((term[1], term[2]))
        logs = set(worker.logs)
        assert (1, b"from print") in logs
        assert (3, b"to stderr") in logs
        assert (1, b"from fd 1") in logs
        assert (3, b"from fd 2") in logs
        assert any(level == 2 and b"UserWarning: a warning" in line for level, line in logs)
    finally:
        worker.stop()


FLOODING_OP = """
import os
from mirage import ops
from mirage.etf import Atom

def flood(source, args):
    for i in range(args[Atom("lines")]):
        os.write(2, b"C line %d\\n" % i)
    return ops.Outcome(term=Atom("done"))

ops.OPS["flood"] = flood
"""


def test_c_output_is_capped_between_calls() -> None:
    # What C code writes to fd 2 belongs to no call: the first lines before a call
    # ends pass, the rest are counted in one line; the next call starts afresh.
    worker = Worker(prelude=FLOODING_OP)
    try:
        lines = Atom("lines")
        assert worker.call(1, "flood", NIL, {lines: 50}) == (OK, NIL, NIL, Atom("done"))
        while not any(b"suppressed" in line for _, line in worker.logs):
            worker.logs.append(worker.log_line())
        first = [line for _, line in worker.logs if line.startswith(b"C line")]
        assert first == [b"C line %d" % i for i in range(20)]
        assert (
            2,
            b"30 more lines written to the output by C code suppressed (the first 20 are above)",
        ) in worker.logs
        worker.logs.clear()
        assert worker.call(2, "flood", NIL, {lines: 3}) == (OK, NIL, NIL, Atom("done"))
        while len(worker.logs) < 3:
            worker.logs.append(worker.log_line())
        assert worker.logs == [(3, b"C line 0"), (3, b"C line 1"), (3, b"C line 2")]
    finally:
        worker.stop()


# --- memory cap ---------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB pixels but carries almost none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return HEADER.pack(len(data)) + kind + data + HEADER.pack(zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1000)))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def test_max_memory_over_the_cap_is_too_many_pixels() -> None:
    # 1 GiB of address space: the program runs, but a 20000x20000 RGB canvas (1.2 GB)
    # does not fit. The pixel budget allows it, so only the cap stops it.
    worker = Worker(args=["--max-memory", str(1 << 30)])
    try:
        assert worker.call(18, "formats", NIL, {})[0] == OK  # type: ignore[index]
        args = {Atom("max_pixels"): 10**9, Atom("width"): 10, Atom("height"): 10}
        reply = worker.call(19, "thumbnail", png_header(20000, 20000), args)
        assert reply == (ERROR, Atom("too_many_pixels"))
        # Python survived the failed allocation: the program goes on.
        assert worker.call(20, "info", SAMPLE, {})[0] == OK  # type: ignore[index]
    finally:
        worker.stop()


# --- the VM going away --------------------------------------------------------------------

STUCK_OP = """
import threading
from mirage import ops

def stuck(source, args):
    threading.Event().wait()  # a decoder that never returns

ops.OPS["stuck"] = stuck
"""


def test_end_of_input_ends_the_program_mid_request() -> None:
    worker = Worker(prelude=STUCK_OP)
    try:
        assert worker.call(21, "formats", NIL, {})[0] == OK  # type: ignore[index]
        worker.send((22, Atom("stuck"), NIL, LIMITS, ME))
        assert worker.close_input() == 0
    finally:
        worker.stop()


# Starts the port program on fds 3/4 as the VM would, prints its pid, then waits to be
# killed: the only holder of the program's input pipe is this process.
FAKE_VM = """
import os, subprocess, sys
child_in, to_child = os.pipe()
from_child, child_out = os.pipe()
def on_fds_3_and_4():
    os.dup2(child_in, 3)
    os.dup2(child_out, 4)
worker = subprocess.Popen([sys.executable, "-m", "mirage.port"], pass_fds=(3, 4),
                          preexec_fn=on_fds_3_and_4, stdout=subprocess.DEVNULL)
print(worker.pid, flush=True)
sys.stdin.read()
"""


def exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (exited, not yet reaped by its new parent)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_vm_killed_with_sigkill_leaves_no_worker() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    vm = subprocess.Popen(
        [sys.executable, "-c", FAKE_VM],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert vm.stdout is not None
    worker_pid = int(vm.stdout.readline())
    try:
        assert not exited(worker_pid)
        vm.kill()  # SIGKILL: no chance to close anything
        vm.wait()
        for _ in range(int(GUARD / 0.05)):
            if exited(worker_pid):
                break
            time.sleep(0.05)
        assert exited(worker_pid)
    finally:
        if not exited(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)


# --- under a real VM ----------------------------------------------------------------------

# open_port exactly as the pool does; prints the results as hex ETF, one per line.
VM_SCRIPT = """
Python = os:getenv("MIRAGE_TEST_PYTHON"),
Port = open_port({spawn_executable, Python},
                 [{packet, 4}, nouse_stdio, binary, exit_status, {args, ["-m", "mirage.port"]}]),
{os_pid, OsPid} = erlang:port_info(Port, os_pid),
Limits = #{max_pixels => 50000000, allowed_formats => [jpg, png]},
{ok, Jpg} = file:read_file(os:getenv("MIRAGE_TEST_SAMPLE")),
Reply = fun Wait() ->
    receive
        {Port, {data, Frame}} ->
            % Not [safe]: format atoms like webp exist only once Mirage is loaded.
            case binary_to_term(Frame) of
                {log, _, _} -> Wait();
                Term -> Term
            end
    after 60000 -> timeout
    end
end,
port_command(Port, term_to_binary({7, formats, nil, Limits, self()})),
Formats = Reply(),
port_command(Port, [<<131, 104, 5, 97, 8>>, tl(binary_to_list(term_to_binary(info))),
                    <<109, (byte_size(Jpg)):32>>, Jpg,
                    tl(binary_to_list(term_to_binary(Limits))),
                    tl(binary_to_list(term_to_binary(self())))]),
Info = Reply(),
port_close(Port),
Print = fun(T) -> io:format("~s~n", [binary:encode_hex(term_to_binary(T))]) end,
Print(OsPid), Print(Formats), Print(Info),
halt().
"""


@pytest.mark.skipif(shutil.which("erl") is None, reason="Erlang not installed (erl not on PATH)")
def test_under_a_real_vm_open_port(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MIRAGE_TEST_PYTHON": sys.executable,
        "MIRAGE_TEST_SAMPLE": str(ROOT / "samples" / "rocket.jpg"),
    }
    run = subprocess.run(
        ["erl", "-noinput", "-eval", VM_SCRIPT],
        env=env,
        cwd=tmp_path,  # where a crash dump would go
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    os_pid, formats, info = (
        etf.decode(bytes.fromhex(line.decode())) for line in run.stdout.split()
    )
    assert formats == (7, (OK, NIL, NIL, etf.decode(etf.encode(ops.formats(None, {}).term))))
    expected_info = etf.decode(etf.encode(ops.info(SAMPLE, LIMITS).term))
    assert info == (8, (OK, NIL, NIL, expected_info))
    # port_close/1 closed the program's input: it is gone.
    assert isinstance(os_pid, int)
    for _ in range(int(GUARD / 0.05)):
        if exited(os_pid):
            break
        time.sleep(0.05)
    assert exited(os_pid)


BROKEN_PATH = """
import mirage.port

def broken(*args, **options):
    raise RuntimeError("a bug in the request path")

mirage.port.handle = broken
"""


def test_a_request_path_that_raises_answers_internal_error() -> None:
    worker = Worker(prelude=BROKEN_PATH)
    try:
        assert worker.call(23, "formats", NIL, {}) == (ERROR, Atom("internal_error"))
        assert worker.call(24, "formats", NIL, {}) == (ERROR, Atom("internal_error"))
        lines = b"\n".join(line for level, line in worker.logs if level == 3)
        assert b"RuntimeError: a bug in the request path" in lines
    finally:
        worker.stop()


UNENCODABLE = """
from mirage import ops

def unencodable(source, args):
    return ops.Outcome(term=object())

ops.OPS["unencodable"] = unencodable
"""


def test_a_reply_that_cannot_be_encoded_answers_internal_error() -> None:
    worker = Worker(prelude=UNENCODABLE)
    try:
        assert worker.call(25, "unencodable", NIL, {}) == (ERROR, Atom("internal_error"))
        assert any(b"EncodeError" in line for level, line in worker.logs if level == 3)
        assert worker.call(26, "formats", NIL, {})[0] == OK  # type: ignore[index]
    finally:
        worker.stop()


ENDLESS_LINE = """
import os
from mirage import ops
from mirage.etf import Atom

def endless(source, args):
    os.write(2, b"x" * 200_000)  # no newline, ever
    return ops.Outcome(term=Atom("done"))

ops.OPS["endless"] = endless
"""


def test_output_without_newlines_still_arrives() -> None:
    worker = Worker(prelude=ENDLESS_LINE)
    try:
        assert worker.call(29, "endless", NIL, {}) == (OK, NIL, NIL, Atom("done"))
        while sum(len(line) for _, line in worker.logs) <= 64 * 1024:
            term = worker.frame()
            assert isinstance(term, tuple) and term[0] == LOG, term
            worker.logs.append((term[1], term[2]))
        assert all(level == 3 and set(line) == {ord("x")} for level, line in worker.logs)
    finally:
        worker.stop()


# --- every operation, as in process ---------------------------------------------------------

HELD = object()  # stands for {:handle, h} of an image made by from_bytes first
OPERATIONS: dict[str, tuple[object, dict[Atom, object]]] = {
    "formats": (NIL, {}),
    "info": (SAMPLE, {}),
    "from_bytes": (SAMPLE, {}),
    "thumbnail": (SAMPLE, {Atom("width"): 80, Atom("height"): 80, Atom("fit"): Atom("fill")}),
    "resize": (HELD, {Atom("width"): 50, Atom("height"): 40}),
    "crop": (HELD, {Atom("x"): 5, Atom("y"): 6, Atom("width"): 30, Atom("height"): 20}),
    "rotate": (HELD, {Atom("degrees"): 90}),
    "flip": (HELD, {Atom("direction"): Atom("vertical")}),
    "auto_orient": (HELD, {}),
    "to_bytes": (HELD, {Atom("format"): Atom("png")}),
}


def test_every_operation_is_listed() -> None:
    assert set(OPERATIONS) == set(ops.OPS)


@pytest.mark.parametrize("op", OPERATIONS)
def test_every_operation_answers_as_in_process(worker: Worker, op: str) -> None:
    source, args = OPERATIONS[op]
    service = Service()
    steps: list[tuple[str, object, dict[Atom, object]]] = [(op, source, args)]
    if source is HELD:
        steps.insert(0, ("from_bytes", SAMPLE, {}))
    for request_id, (name, step_source, step_args) in enumerate(steps):
        if step_source is HELD:
            step_source = (Atom("handle"), 1)  # both sides number handles from 1
        full = {**LIMITS, **step_args}
        expected = etf.decode(etf.encode(handle(service, Atom(name), step_source, full, ME)))
        assert worker.call(request_id, name, step_source, step_args) == expected
