"""Route an embedded interpreter's output (stdout, stderr, warnings, logging) to a sink.

Inside the BEAM nothing may write to the VM's stdout, so the NIF installs a sink that
forwards each line to Elixir's Logger. Kept apart from cffi so it can be tested alone.

What one call may log is capped: a transport runs each call inside :func:`one_call`,
which lets the first :data:`MAX_LINES_PER_CALL` lines through and then counts the
rest, reported as one line when the call ends. A crafted file with thousands of bad
EXIF entries (one warning each) then costs one line more, not thousands.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TextIO

DEBUG, INFO, WARNING, ERROR = 0, 1, 2, 3

#: Receives a level (0 debug .. 3 error) and one line of text without its newline.
Sink = Callable[[int, str], None]

#: Lines one call may send before the rest are only counted.
MAX_LINES_PER_CALL = 20


@dataclass
class _CallLog:
    lines: int = 0
    suppressed: int = 0

    def admit(self) -> bool:
        if self.lines < MAX_LINES_PER_CALL:
            self.lines += 1
            return True
        self.suppressed += 1
        return False


_call: ContextVar[_CallLog | None] = ContextVar("mirage_call_log", default=None)
# The sink install() routed output to: one_call() reports suppressed lines there.
_installed: Sink | None = None
# Run as each call ends: output no call owns (mirage.host.capture_fd) is capped
# between call ends. Empty unless a transport captured a file descriptor.
_call_end_hooks: list[Callable[[], None]] = []


def on_call_end(hook: Callable[[], None]) -> None:
    """Run ``hook`` (cheap, never raising) whenever a :class:`one_call` block ends."""
    _call_end_hooks.append(hook)


def forget_call_end_hooks() -> None:
    """Undo every :func:`on_call_end` (for tests)."""
    _call_end_hooks.clear()


def _admitted() -> bool:
    call = _call.get()
    return call is None or call.admit()


def capped(sink: Sink) -> Sink:
    """``sink``, letting through only what the current call may still log."""

    def emit(level: int, line: str) -> None:
        if _admitted():
            sink(level, line)

    return emit


class one_call:
    """Cap the lines logged inside the block; report the suppressed ones to ``sink``
    (default: the sink :func:`install` routed output to, if any).

    A class, not a generator: it wraps every call, so it is kept cheap.
    """

    __slots__ = ("_call", "_sink", "_token")

    def __init__(self, sink: Sink | None = None) -> None:
        self._sink = sink or _installed
        self._call = _CallLog()

    def __enter__(self) -> None:
        self._token = _call.set(self._call)

    def __exit__(self, *exc: object) -> None:
        _call.reset(self._token)
        for hook in _call_end_hooks:
            hook()
        suppressed = self._call.suppressed
        if suppressed and self._sink is not None:
            self._sink(
                WARNING,
                f"{suppressed} more lines of output from this call suppressed "
                f"(the first {MAX_LINES_PER_CALL} are above)",
            )


class LineWriter(io.TextIOBase):
    """A text stream that hands complete lines to a sink at a fixed level."""

    def __init__(self, sink: Sink, level: int) -> None:
        super().__init__()
        self._sink = sink
        self._level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._sink(self._level, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._sink(self._level, line)


class SinkHandler(logging.Handler):
    """A logging handler that formats records and hands them to a sink."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            level = ERROR
        elif record.levelno >= logging.WARNING:
            level = WARNING
        elif record.levelno >= logging.INFO:
            level = INFO
        else:
            level = DEBUG
        self._sink(level, self.format(record))


def forget_sink() -> None:
    """Undo :func:`install`'s record of the sink (the streams are the caller's)."""
    global _installed
    _installed = None


def install(sink: Sink) -> tuple[TextIO, TextIO]:
    """Send stdout, stderr, warnings and root logging to ``sink``.

    Returns the previous ``(stdout, stderr)`` so a caller (a test) can restore them.
    """
    global _installed
    _installed = sink
    previous = (sys.stdout, sys.stderr)
    limited = capped(sink)
    sys.stdout = LineWriter(limited, INFO)
    sys.stderr = LineWriter(limited, ERROR)

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not _admitted():
            return  # counted; not even formatted
        text = warnings.formatwarning(message, category, filename, lineno, line)
        sink(WARNING, text.rstrip("\n"))

    warnings.showwarning = show
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, SinkHandler)]:
        root.removeHandler(handler)  # installing twice must not log twice
    root.addHandler(SinkHandler(limited))
    return previous
