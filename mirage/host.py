"""Set-up of a process Mirage owns: the NIF's embedded interpreter, the port program,
the node. A library user's own process is never changed behind their back: only a
transport calls :func:`setup`, once, before serving requests.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import TextIO

from mirage import memory, output


@dataclass
class Setup:
    """What :func:`setup` changed, so that :meth:`undo` can put it back (for tests;
    a transport keeps its set-up for the life of the process)."""

    streams: tuple[TextIO, TextIO]
    warning_state: warnings.catch_warnings
    block_cache: memory.BlockCache
    handlers: list[logging.Handler] = field(default_factory=list)

    def undo(self) -> None:
        sys.stdout, sys.stderr = self.streams
        output.forget_sink()
        self.warning_state.__exit__(None, None, None)  # filters and showwarning
        root = logging.getLogger()
        for added in [h for h in root.handlers if isinstance(h, output.SinkHandler)]:
            root.removeHandler(added)
        for handler in self.handlers:
            root.addHandler(handler)
        memory.configure(self.block_cache.block_size, self.block_cache.blocks_max, environ={})


def setup(sink: output.Sink) -> Setup:
    """Route all output to ``sink``, report every warning, and keep Pillow's blocks.

    - stdout, stderr, warnings and logging (tracebacks of internal errors included)
      go to ``sink``: a process embedded in or serving the BEAM must not write to
      the VM's stdout, and its operators read Logger.
    - Every ``UserWarning`` is reported, not just the first per code location: in a
      long-running process "once" would report only the first bad upload.
    - Pillow's block cache is configured (:mod:`mirage.memory`).
    """
    root = logging.getLogger()
    warning_state = warnings.catch_warnings()
    warning_state.__enter__()  # records filters and showwarning for undo()
    before = Setup(
        streams=(sys.stdout, sys.stderr),
        warning_state=warning_state,
        block_cache=memory.current(),
        handlers=[h for h in root.handlers if isinstance(h, output.SinkHandler)],
    )
    output.install(sink)
    warnings.filterwarnings("always", category=UserWarning)
    memory.configure()
    return before


#: Written to a captured descriptor as each call ends: the lines before it were
#: written during or before that call. NULs cannot come from a C format string.
CALL_END = b"\x00mirage: a call ended\x00"
# Longer runs of output without a newline go out as lines of their own.
MAX_LINE = 64 * 1024


def capture_fd(fd: int, level: int, sink: output.Sink) -> None:
    """Make ``fd`` (1 or 2) a pipe whose lines go to ``sink`` at ``level``.

    For a process serving the VM from outside it (the port program, the node): C
    libraries under Pillow (libtiff: "WEBP compression support is not configured")
    write straight to file descriptors 1 and 2, where nobody reads them, or where the
    port's or node's own protocol runs. A daemon thread reads the pipe. Such lines
    belong to no call, so they are capped between call ends instead: at most
    :data:`mirage.output.MAX_LINES_PER_CALL` lines, the rest counted and reported as
    one line when the next call ends (a :data:`CALL_END` mark in the pipe tells).
    Whatever writes to ``fd`` afterwards (``sys.stderr`` included) goes the same way,
    so ``sink`` itself must write elsewhere (a copy of the descriptor made first).
    """
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)
    mark = CALL_END + b"\n"
    output.on_call_end(lambda: _write_mark(fd, mark))
    threading.Thread(
        target=_pump, args=(read_end, level, sink), name=f"mirage-fd{fd}", daemon=True
    ).start()


def _write_mark(fd: int, mark: bytes) -> None:
    try:
        os.write(fd, mark)
    except OSError:  # the descriptor was closed or replaced: nothing to cap
        pass


def _pump(read_end: int, level: int, sink: output.Sink) -> None:
    lines = 0
    suppressed = 0
    with open(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            *complete, pending = (pending + chunk).split(b"\n")
            if len(pending) > MAX_LINE:  # output without newlines: pass it on
                complete.append(pending)
                pending = b""
            for line in complete:
                ended = line.endswith(CALL_END)
                if ended:  # a line the mark cut short keeps its start
                    line = line[: -len(CALL_END)]
                if line or not ended:
                    if lines < output.MAX_LINES_PER_CALL:
                        lines += 1
                        sink(level, line.decode("utf-8", "replace"))
                    else:
                        suppressed += 1
                if ended:
                    if suppressed:
                        sink(output.WARNING, _suppressed_line(suppressed))
                    lines = suppressed = 0


def _suppressed_line(count: int) -> str:
    return (
        f"{count} more lines written to the output by C code suppressed "
        f"(the first {output.MAX_LINES_PER_CALL} are above)"
    )
