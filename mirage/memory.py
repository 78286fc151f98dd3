"""Pillow's cache of pixel blocks, set up for a process that makes images all day.

Pillow allocates pixels in blocks and by default frees every block when its image
goes. A plain Python process hardly notices: glibc's mmap threshold adapts, and the
freed memory serves the next image. Inside the BEAM it does not adapt. ERTS sets
malloc's trim threshold at start-up, which pins the mmap threshold at 128 KiB. Every
larger buffer is then mapped and unmapped per call, and every page of it faults
again on the next image.

Keeping a bounded number of freed blocks for reuse removes most of those faults. The
blocks are kept just under that threshold, so glibc serves them from its heap: a
cached block that Pillow resizes for the next image's line length is then
reallocated in place, where a block at the threshold would be mapped afresh and
faulted in again (``bench/`` measures the difference).

The setting is process-wide, so only processes Mirage owns apply it (through
:func:`mirage.host.setup`); :mod:`mirage.image` never does. Pillow's own
``PILLOW_BLOCK_SIZE`` and ``PILLOW_BLOCKS_MAX`` environment variables, when set, win.

The same settings keep memory after a large image: its blocks are freed into glibc's
heaps, not to the OS, so the process stays at its peak. A transport runs each call
inside :func:`returned_after`; a call that planned at least :data:`TRIM_ABOVE` pixels
(:func:`note`, called with every budget check) ends with ``malloc_trim(0)``, which
hands the free pages back, and so does releasing a large held image. Small calls,
the common case, skip it.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from PIL import _imaging as core

BLOCK_SIZE = 120 * 1024
#: At most BLOCK_SIZE * BLOCKS_MAX bytes (7.5 MiB) stay cached between calls.
BLOCKS_MAX = 64
#: Pillow reads these at import; a user who set either has chosen for us.
ENVIRONMENT = ("PILLOW_BLOCK_SIZE", "PILLOW_BLOCKS_MAX")
#: Calls that plan at least this many pixels (16 MB as RGBA) give free memory back.
TRIM_ABOVE = 1 << 22


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to call
        return None


_trim = _malloc_trim()
_planned: ContextVar[list[int] | None] = ContextVar("mirage_planned_pixels", default=None)


@dataclass(frozen=True)
class BlockCache:
    block_size: int
    blocks_max: int


def current() -> BlockCache:
    return BlockCache(core.get_block_size(), core.get_blocks_max())


def configure(
    block_size: int = BLOCK_SIZE,
    blocks_max: int = BLOCKS_MAX,
    environ: Mapping[str, str] = os.environ,
) -> BlockCache:
    """Apply the block cache unless Pillow's variables are set; return what is in effect."""
    if not any(name in environ for name in ENVIRONMENT):
        core.set_block_size(block_size)
        core.set_blocks_max(blocks_max)
    return current()


def note(pixels: int) -> None:
    """Record that the current call plans to hold ``pixels`` pixels."""
    planned = _planned.get()
    if planned is not None and pixels > planned[0]:
        planned[0] = pixels


def trim() -> bool:
    """Give free heap pages back to the OS; False where the C library cannot."""
    if _trim is None:
        return False
    _trim(0)
    return True


class returned_after:
    """Run one call; if it planned :data:`TRIM_ABOVE` pixels or more, trim after it.

    A class, not a generator: it wraps every call, so it is kept cheap.
    """

    __slots__ = ("_planned", "_token")

    def __init__(self) -> None:
        self._planned = [0]

    def __enter__(self) -> None:
        self._token = _planned.set(self._planned)

    def __exit__(self, *exc: object) -> None:
        _planned.reset(self._token)
        if self._planned[0] >= TRIM_ABOVE:
            trim()
