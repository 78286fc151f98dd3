"""``python -m mirage.port``: Mirage's request path as an Erlang port program.

The VM starts it with ``open_port({:spawn_executable, python}, [{:packet, 4},
:nouse_stdio, :binary, args: ["-m", "mirage.port" | options]])`` (``PYTHONPATH``
naming the directory that holds the ``mirage`` package). Frames of ETF arrive on file
descriptor 3 and leave on 4:

- ``{id, op, source, args, owner}`` -> ``{id, reply}``, ``reply`` being exactly the
  NIF's reply term (see ``mirage.server.handle``); requests are answered in order.
- ``{id, :live_handles, nil, _args, _owner}`` -> ``{id, {:ok, nil, nil, count}}``: how
  many images this program holds (for ``Mirage.Transport.Port.live_handles/0``).
- ``{:release, [handle]}`` and ``{:release_owner, owner}``: no reply.
- ``{:log, level, line}`` from the program at any time: level 0..3 (debug, info,
  warning, error), ``line`` a binary. Python's stdout, stderr, warnings and logging,
  and whatever C code writes to file descriptors 1 and 2, arrive this way (the last
  capped between call ends: ``mirage.host.capture_fd``).

A reader thread owns the input and ends the process as soon as it ends (the VM closed
the port, exited or was killed), even in the middle of a request. A request with an
integer id is always answered: a malformed op, source or args map gets the error
reply ``mirage.server.handle`` gives it. A frame with no id to answer to (not ETF,
not a tuple, a non-integer id, an unknown message) means a broken peer: the program
logs why (``{:log, 3, "mirage.port: bad frame, exiting: ..."}``) and exits with
status 2. Input that ends inside a frame also exits with status 2, a clean end of
input with 0.

An operation's encoded output goes from the encoder's own buffer (or memfd) into the
reply frame (``buffers.keep``, ``Encoded.write_to``); a request's binaries of 64 KiB
or more are views of the frame they came in (``etf.decode(views=True)``).

``--max-memory BYTES`` caps the address space (``RLIMIT_AS``). An allocation past the
cap fails: where Python sees it (Pillow's pixel buffers, Python objects) the request
answers ``{:error, :too_many_pixels}`` and the program carries on; where C code cannot
recover, the process dies and the VM sees it exit. The cap covers the interpreter, the
libraries, the thread stacks and glibc's malloc arenas too, so it must leave room for
them above the largest image.
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import sys
import threading
import traceback
from collections.abc import Hashable, Sequence

from mirage import buffers, etf, host, output
from mirage.etf import Atom, DecodeError
from mirage.framing import MAX_FRAME, FrameReader, FrameWriter, FramingError, Part
from mirage.server import handle
from mirage.service import Service

IN_FD = 3
OUT_FD = 4
#: Exit status for a frame that is not a message of the protocol.
EXIT_BAD_FRAME = 2
_LOG = Atom("log")
_RELEASE = Atom("release")
_RELEASE_OWNER = Atom("release_owner")
_LIVE_HANDLES = Atom("live_handles")
_OK = Atom("ok")
_INTERNAL_ERROR = (Atom("error"), Atom("internal_error"))
# Small stacks for the helper threads: the address-space cap counts every stack.
_THREAD_STACK = 256 * 1024


class ProtocolError(Exception):
    """A frame that decodes but is not a message of the protocol."""


class Port:
    """One port program: requests in, replies and log lines out."""

    def __init__(self, writer: FrameWriter, service: Service) -> None:
        self.writer = writer
        self.service = service

    def log(self, level: int, line: str) -> None:
        self.writer.write([etf.encode((_LOG, level, line.encode("utf-8", "replace")))])

    def serve(self, frame: bytes) -> None:
        """Act on one frame: answer a request, or release handles."""
        message = etf.decode(frame, views=True)
        if not isinstance(message, tuple):
            raise ProtocolError(f"expected a tuple, got {type(message).__name__}")
        if len(message) == 5:
            request_id, op, source, args, owner = message
            if type(request_id) is not int:
                raise ProtocolError("a request's id is an integer")
            # With an id to answer to, the rest (op, source, args) is the request
            # path's to judge: a malformed request gets an error reply.
            owner = _hashable(owner)
            if op == _LIVE_HANDLES:
                self.answer(request_id, (_OK, None, None, self.service.live_handles()))
                return
            try:
                # keep: the Encoded itself, streamed into the frame by answer().
                reply = handle(self.service, op, source, args, owner, output=buffers.keep)
            except Exception:  # noqa: BLE001 - a bug: the caller still gets its answer
                traceback.print_exc()
                reply = _INTERNAL_ERROR
            self.answer(request_id, reply)
        elif len(message) == 2 and message[0] == _RELEASE and isinstance(message[1], list):
            for handle_id in message[1]:
                if type(handle_id) is not int:
                    raise ProtocolError("release takes a list of integer handles")
                self.service.release(handle_id)
        elif len(message) == 2 and message[0] == _RELEASE_OWNER:
            self.service.release_owner(_hashable(message[1]))
        else:
            raise ProtocolError(f"unknown message: a tuple of {len(message)}")

    def answer(self, request_id: int, reply: object) -> None:
        """Write ``{request_id, reply}``; a reply the frame cannot carry is a bug here,
        answered as ``internal_error``."""
        try:
            self._write_reply(request_id, reply)
        except (etf.EncodeError, FramingError):
            traceback.print_exc()
            self._write_reply(request_id, _INTERNAL_ERROR)

    def _write_reply(self, request_id: int, reply: object) -> None:
        """Write ``{request_id, reply}``, streaming an encoder's output into the frame."""
        if not (isinstance(reply, tuple) and len(reply) == 4 and _streamed(reply[1])):
            self.writer.write(etf.encode_parts((request_id, reply)))
            return
        # {id, {ok, <<data>>, image, term}} written around an Encoded, so its bytes go
        # from its own file to the pipe without a copy in Python.
        ok, data, image, term = reply
        try:
            if len(data) > MAX_FRAME:
                raise FramingError(f"a {len(data)}-byte output does not fit {{:packet, 4}}")
            head = b"\x83h\x02" + etf.encode(request_id)[1:] + b"h\x04" + etf.encode(ok)[1:]
            parts: list[Part] = [head, b"m" + len(data).to_bytes(4, "big")]
            parts.append(data)
            parts.append(etf.encode((image, term))[3:])  # the elements after "h\x02"
            self.writer.write(parts)
        finally:
            data.close()


def _streamed(data: object) -> bool:
    """Whether a reply's data is an ``Encoded`` (kept by ``buffers.keep``), not bytes."""
    return isinstance(data, buffers.Encoded)


def _hashable(owner: object) -> Hashable:
    if isinstance(owner, Hashable):
        return owner
    raise ProtocolError(f"owner of type {type(owner).__name__} is not hashable")


def _read_frames(reader: FrameReader, frames: queue.SimpleQueue[bytes]) -> None:
    """The reader thread: queue frames; end the process when the input ends."""
    try:
        while (frame := reader.read()) is not None:
            frames.put(frame)
    except BaseException:  # noqa: BLE001 - a cut stream, or no memory for a frame
        # Nothing to answer to; without this thread the program would wait forever.
        os._exit(EXIT_BAD_FRAME)
    # The VM is gone or closed the port: nobody wants the answer being worked on.
    os._exit(0)


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mirage.port", description=__doc__)
    parser.add_argument("--max-memory", type=int, metavar="BYTES", help="RLIMIT_AS cap")
    parser.add_argument("--max-handles", type=int, metavar="N", help="held images cap")
    parser.add_argument("--max-bytes", type=int, metavar="BYTES", help="held pixels cap")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    if options.max_memory is not None:
        resource.setrlimit(resource.RLIMIT_AS, (options.max_memory, options.max_memory))
    # The VM's own stdin: never read it.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    port = Port(FrameWriter(OUT_FD), Service(options.max_handles, options.max_bytes))
    frames: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    reader = FrameReader(IN_FD)
    # Small stacks for these helper threads only (the cap counts every stack);
    # threads the request path may start get the default again.
    default_stack = threading.stack_size(_THREAD_STACK)
    try:
        host.capture_fd(1, output.INFO, port.log)
        host.capture_fd(2, output.ERROR, port.log)
        threading.Thread(
            target=_read_frames, args=(reader, frames), name="mirage-reader", daemon=True
        ).start()
    finally:
        threading.stack_size(default_stack)
    host.setup(port.log)
    while True:
        frame = frames.get()
        try:
            port.serve(frame)
        except (DecodeError, ProtocolError) as exc:
            port.log(output.ERROR, f"mirage.port: bad frame, exiting: {exc}")
            os._exit(EXIT_BAD_FRAME)
        except OSError:
            os._exit(0)  # the output pipe is gone: so is the VM
        del frame  # a large request's bytes go now, not when the next one arrives


if __name__ == "__main__":
    sys.exit(main())
