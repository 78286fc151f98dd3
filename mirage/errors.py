"""Domain errors, each carrying a ``reason`` from one closed set.

Every transport reports failures as one of :data:`REASONS` (the NIF as an index into
atoms made at load time, the port and node as atoms), so this module is the single
source of truth for that set. Each error also subclasses the built-in exception a
Python caller would expect (``ValueError``, ``OSError``, ...).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal

from PIL import UnidentifiedImageError
from PIL.Image import DecompressionBombError

Phase = Literal["decode", "encode"]


class MirageError(Exception):
    """Base class: ``reason`` names the failure for every transport."""

    reason: ClassVar[str] = "internal_error"


class UnsupportedImageFormat(MirageError, ValueError):
    """The bytes are not an image in an allowed format (includes empty input)."""

    reason = "unsupported_image_format"


class TruncatedImage(MirageError, OSError):
    """The image data ends before the header or the pixel data is complete."""

    reason = "truncated_image"


class TooManyPixels(MirageError, ValueError):
    """The source or requested output exceeds the pixel budget, or memory ran out."""

    reason = "too_many_pixels"


class InvalidDimensions(MirageError, ValueError):
    """A width or height is zero, negative or otherwise unusable."""

    reason = "invalid_dimensions"


class DecodeFailed(MirageError, OSError):
    """The header was readable but the image data is corrupt."""

    reason = "decode_failed"


class EncodeFailed(MirageError, OSError):
    """The image could not be written in the requested format."""

    reason = "encode_failed"


class InternalError(MirageError, RuntimeError):
    """Catch-all: an unexpected failure inside Mirage or Pillow (a bug to report)."""

    reason = "internal_error"


ERRORS: tuple[type[MirageError], ...] = (
    UnsupportedImageFormat,
    TruncatedImage,
    TooManyPixels,
    InvalidDimensions,
    DecodeFailed,
    EncodeFailed,
    InternalError,
)

#: The closed set of failure reasons, in a fixed order (the NIF's atom table index).
REASONS: tuple[str, ...] = tuple(cls.reason for cls in ERRORS)

# Exceptions Pillow's plugins raise for malformed data (as opposed to our own bugs).
_DATA_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    struct.error,
    RuntimeError,
)


def _is_truncation(exc: BaseException) -> bool:
    if isinstance(exc, (EOFError, struct.error)):
        return True
    return isinstance(exc, OSError) and "truncated" in str(exc).lower()


def classify(exc: BaseException, phase: Phase) -> MirageError:
    """Map any exception raised while decoding or encoding to a :class:`MirageError`."""
    if isinstance(exc, MirageError):
        return exc
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (DecompressionBombError, MemoryError)):
        return TooManyPixels(message)
    if isinstance(exc, UnidentifiedImageError):
        return UnsupportedImageFormat(message)
    if phase == "decode" and _is_truncation(exc):
        return TruncatedImage(message)
    if isinstance(exc, (*_DATA_ERRORS, EOFError)):
        return DecodeFailed(message) if phase == "decode" else EncodeFailed(message)
    return InternalError(message)


@contextmanager
def translate(phase: Phase) -> Iterator[None]:
    """Re-raise anything escaping the block as the matching :class:`MirageError`."""
    try:
        yield
    except MirageError:
        raise
    except Exception as exc:  # every failure must map to a reason
        raise classify(exc, phase) from exc
