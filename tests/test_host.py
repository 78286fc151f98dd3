"""mirage.host: set-up of a process Mirage owns (output to a sink, warnings, blocks)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest
from PIL import _imaging as core

from mirage import host, memory
from tests.conftest import logged_text


def test_output_goes_to_the_sink() -> None:
    # Set up inside the test: pytest swaps the streams between a fixture and the test.
    sink_lines: list[tuple[int, str]] = []
    setup = host.setup(lambda level, line: sink_lines.append((level, line)))
    try:
        print("to stdout")
        print("to stderr", file=sys.stderr)
        logging.getLogger("mirage").error("a log record")
    finally:
        setup.undo()
    assert (1, "to stdout") in sink_lines
    assert (3, "to stderr") in sink_lines
    assert (3, "a log record") in sink_lines


def test_every_warning_is_reported(sink_lines: list[tuple[int, str]]) -> None:
    for _ in range(3):
        warnings.warn("a bad upload", UserWarning, stacklevel=1)  # one code location
    assert sum("a bad upload" in line for _, line in sink_lines) == 3
    assert all(level == 2 for level, line in sink_lines if "a bad upload" in line)


@pytest.mark.skipif(
    any(name in os.environ for name in memory.ENVIRONMENT),
    reason="Pillow's own block variables are set: set-up leaves the cache alone",
)
def test_block_cache_is_configured(sink_lines: list[tuple[int, str]]) -> None:
    assert memory.current() == memory.BlockCache(memory.BLOCK_SIZE, memory.BLOCKS_MAX)


def test_undo_puts_everything_back() -> None:
    before_streams = (sys.stdout, sys.stderr)
    before_filters = list(warnings.filters)
    before_cache = memory.current()
    before_handlers = list(logging.getLogger().handlers)
    lines: list[tuple[int, str]] = []
    setup = host.setup(lambda level, line: lines.append((level, line)))
    assert sys.stdout is not before_streams[0]
    setup.undo()
    assert (sys.stdout, sys.stderr) == before_streams
    assert list(warnings.filters) == before_filters
    assert memory.current() == before_cache
    assert logging.getLogger().handlers == before_handlers
    print("after undo")
    logging.getLogger("mirage").error("not routed")
    assert "after undo" not in logged_text(lines) and "not routed" not in logged_text(lines)
    core.clear_cache()
