"""mirage.output: stdout, stderr, warnings and logging routed line by line to a sink."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import pytest

from mirage import output
from mirage.output import DEBUG, ERROR, INFO, WARNING, LineWriter, SinkHandler

Lines = list[tuple[int, str]]


class Recorder:
    """A sink that remembers every (level, line) it is given."""

    def __init__(self) -> None:
        self.lines: Lines = []

    def __call__(self, level: int, line: str) -> None:
        self.lines.append((level, line))


def test_levels_are_ordered_zero_to_three() -> None:
    # The C side maps these numbers to Logger levels.
    assert (DEBUG, INFO, WARNING, ERROR) == (0, 1, 2, 3)


# --- LineWriter ----------------------------------------------------------------------------


def test_line_writer_emits_complete_lines() -> None:
    sink = Recorder()
    writer = LineWriter(sink, WARNING)
    assert writer.write("one\ntwo\n") == len("one\ntwo\n")
    assert sink.lines == [(WARNING, "one"), (WARNING, "two")]


def test_line_writer_buffers_partial_lines() -> None:
    sink = Recorder()
    writer = LineWriter(sink, INFO)
    writer.write("hel")
    writer.write("lo")
    assert sink.lines == []
    writer.write(" world\nnext")
    assert sink.lines == [(INFO, "hello world")]
    writer.flush()
    writer.flush()  # the partial line went out once and is gone
    assert sink.lines == [(INFO, "hello world"), (INFO, "next")]
    writer.write("\n")
    assert sink.lines[-1] == (INFO, "")


def test_line_writer_flush_without_pending_text_is_silent() -> None:
    sink = Recorder()
    writer = LineWriter(sink, INFO)
    writer.flush()
    writer.write("done\n")
    writer.flush()
    writer.flush()
    assert sink.lines == [(INFO, "done")]


def test_line_writer_keeps_empty_lines() -> None:
    sink = Recorder()
    LineWriter(sink, ERROR).write("a\n\nb\n")
    assert sink.lines == [(ERROR, "a"), (ERROR, ""), (ERROR, "b")]


def test_line_writer_works_with_print() -> None:
    sink = Recorder()
    writer = LineWriter(sink, INFO)
    assert writer.writable()
    print("x =", 42, file=writer)
    print("partial", end="", file=writer)
    assert sink.lines == [(INFO, "x = 42")]
    writer.flush()
    assert sink.lines[-1] == (INFO, "partial")


# --- SinkHandler ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levelno", "expected"),
    [
        (1, DEBUG),
        (logging.DEBUG, DEBUG),
        (15, DEBUG),
        (logging.INFO, INFO),
        (25, INFO),
        (logging.WARNING, WARNING),
        (35, WARNING),
        (logging.ERROR, ERROR),
        (logging.CRITICAL, ERROR),
    ],
)
def test_sink_handler_maps_levels(levelno: int, expected: int) -> None:
    sink = Recorder()
    logger = logging.getLogger(f"mirage.tests.levels.{levelno}")
    logger.propagate = False  # keep the record away from other handlers
    logger.setLevel(1)
    handler = SinkHandler(sink)
    logger.addHandler(handler)
    try:
        logger.log(levelno, "message %d", 7)
    finally:
        logger.removeHandler(handler)
    assert sink.lines == [(expected, "message 7")]


def test_sink_handler_uses_its_formatter() -> None:
    sink = Recorder()
    handler = SinkHandler(sink)
    handler.setFormatter(logging.Formatter("%(name)s/%(levelname)s: %(message)s"))
    record = logging.LogRecord("pkg.mod", logging.WARNING, __file__, 1, "careful", None, None)
    handler.handle(record)
    assert sink.lines == [(WARNING, "pkg.mod/WARNING: careful")]


# --- install -------------------------------------------------------------------------------


@contextmanager
def installed_sink() -> Iterator[tuple[Recorder, tuple[TextIO, TextIO], tuple[TextIO, TextIO]]]:
    """install() a recorder, then put every global it touched back as it was.

    A context manager, not a fixture: pytest re-installs its own capture streams
    between setup and call, which would undo an install() done during setup.
    """
    root = logging.getLogger()
    before_streams = (sys.stdout, sys.stderr)
    before_showwarning = warnings.showwarning
    before_handlers = list(root.handlers)
    sink = Recorder()
    try:
        returned = output.install(sink)
        yield sink, returned, before_streams
    finally:
        sys.stdout, sys.stderr = before_streams
        warnings.showwarning = before_showwarning  # type: ignore[assignment]
        for handler in root.handlers[:]:
            if handler not in before_handlers:
                root.removeHandler(handler)
    assert root.handlers == before_handlers


def test_install_returns_previous_streams() -> None:
    with installed_sink() as (_, returned, before):
        assert returned == before
        assert isinstance(sys.stdout, LineWriter)
        assert isinstance(sys.stderr, LineWriter)
    # ... and the context manager really put them back.
    assert (sys.stdout, sys.stderr) == before


def test_install_routes_stdout_and_stderr() -> None:
    with installed_sink() as (sink, _, _):
        print("to stdout")
        sys.stderr.write("to stderr\n")
    assert sink.lines == [(INFO, "to stdout"), (ERROR, "to stderr")]


def test_install_routes_warnings() -> None:
    with installed_sink() as (sink, _, _), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("mind the gap", UserWarning, stacklevel=1)
    assert len(sink.lines) == 1
    level, text = sink.lines[0]
    assert level == WARNING
    assert "UserWarning: mind the gap" in text
    assert not text.endswith("\n")


def test_install_routes_root_logging() -> None:
    with installed_sink() as (sink, _, _):
        logging.getLogger("mirage.tests.install").error("boom %s", "here")
        added = [h for h in logging.getLogger().handlers if isinstance(h, SinkHandler)]
        assert len(added) == 1
    assert (ERROR, "boom here") in sink.lines


# --- what one call may log ------------------------------------------------------------------


def test_one_call_logs_its_first_lines_and_counts_the_rest() -> None:
    with installed_sink() as (sink, _, _), warnings.catch_warnings():
        warnings.simplefilter("always")
        with output.one_call(sink):
            for index in range(500):
                warnings.warn(f"bad entry {index}", UserWarning, stacklevel=1)
                logging.getLogger("PIL").warning("logged %d", index)
            print("printed")
    lines = [line for _, line in sink.lines]
    assert len(lines) == output.MAX_LINES_PER_CALL + 1
    assert "bad entry 0" in lines[0] and "logged 0" in lines[1]
    assert lines[-1].startswith(f"{2 * 500 + 1 - output.MAX_LINES_PER_CALL} more lines")
    assert sink.lines[-1][0] == WARNING


def test_each_call_has_its_own_allowance_and_outside_calls_nothing_is_capped() -> None:
    with installed_sink() as (sink, _, _):
        for _ in range(2):
            with output.one_call(sink):
                for index in range(output.MAX_LINES_PER_CALL):
                    print(index)
        for index in range(100):
            print(index)
    assert len(sink.lines) == 2 * output.MAX_LINES_PER_CALL + 100
    assert not any("suppressed" in line for _, line in sink.lines)
