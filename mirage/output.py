"""Route an embedded interpreter's output (stdout, stderr, warnings, logging) to a sink.

Inside the BEAM nothing may write to the VM's stdout, so the NIF installs a sink that
forwards each line to Elixir's Logger. Kept apart from cffi so it can be tested alone.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Callable
from typing import TextIO

DEBUG, INFO, WARNING, ERROR = 0, 1, 2, 3

#: Receives a level (0 debug .. 3 error) and one line of text without its newline.
Sink = Callable[[int, str], None]


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


def install(sink: Sink) -> tuple[TextIO, TextIO]:
    """Send stdout, stderr, warnings and root logging to ``sink``.

    Returns the previous ``(stdout, stderr)`` so a caller (a test) can restore them.
    """
    previous = (sys.stdout, sys.stderr)
    sys.stdout = LineWriter(sink, INFO)
    sys.stderr = LineWriter(sink, ERROR)

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line)
        sink(WARNING, text.rstrip("\n"))

    warnings.showwarning = show
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, SinkHandler)]:
        root.removeHandler(handler)  # installing twice must not log twice
    root.addHandler(SinkHandler(sink))
    return previous
