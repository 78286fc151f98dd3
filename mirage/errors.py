"""Domain errors, each carrying a ``reason`` from one closed set.

Every transport reports failures as one of :data:`REASONS` (the NIF as an index into
atoms made at load time, the port and node as atoms), so this module is the single
source of truth for that set. Each error also subclasses the built-in exception a
Python caller would expect (``ValueError``, ``OSError``, ...).

Bugs are not bad data: only exceptions Pillow raises while decoding or encoding are
turned into data reasons. An exception raised by Mirage's own code passes through
:func:`translate` unchanged, and :func:`reason_of` reports it as ``internal_error``
with its traceback logged.
"""

from __future__ import annotations

import logging
import os
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


class TooComplex(MirageError, ValueError):
    """The file's structure asks for more work than the limits allow: more JPEG scans
    than ``max_scans``, TIFF strips or tiles beyond what the size needs or too many
    for the budget, an RLE BMP too large for the budget at several pixels' charge
    each, or more markers, chunks, sub-blocks, TIFF entries or tag values, frames or
    pages than a header read walks (see :mod:`mirage.survey`)."""

    reason = "too_complex"


class InvalidDimensions(MirageError, ValueError):
    """A width or height is zero, negative or otherwise unusable."""

    reason = "invalid_dimensions"


class DecodeFailed(MirageError, OSError):
    """The header was readable but the image data is corrupt."""

    reason = "decode_failed"


class EncodeFailed(MirageError, OSError):
    """The image could not be written in the requested format."""

    reason = "encode_failed"


class UnsupportedFeature(MirageError, ValueError):
    """A valid image using a variant of its format this build cannot decode (a BMP
    with an unusual bitfields layout, 2 bits a pixel or RLE24, a 12-bit JPEG, a TIFF of
    32-bit float samples or a compression libtiff was built without)."""

    reason = "unsupported_feature"


class InternalError(MirageError, RuntimeError):
    """Catch-all: an unexpected failure inside Mirage or Pillow (a bug to report)."""

    reason = "internal_error"


ERRORS: tuple[type[MirageError], ...] = (
    UnsupportedImageFormat,
    TruncatedImage,
    TooManyPixels,
    TooComplex,
    InvalidDimensions,
    DecodeFailed,
    EncodeFailed,
    UnsupportedFeature,
    InternalError,
)

#: The closed set of failure reasons, in a fixed order (the NIF's atom table index).
REASONS: tuple[str, ...] = tuple(cls.reason for cls in ERRORS)


class Overloaded(MirageError):
    """A worker holds as many images (or bytes of them) as it may: a transport
    reason, so not in :data:`REASONS` (Elixir adds it with ``timeout`` and
    ``worker_crashed``). The NIF sets no caps and never raises it."""

    reason = "overloaded"


# What Pillow's plugins raise for malformed data. Only exceptions raised by Pillow
# (see _raised_by_mirage) are looked up here.
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


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def raised_by_mirage(exc: BaseException) -> bool:
    """Whether ``exc`` comes from Mirage's own code: a bug, whatever its type.

    The innermost frame of a traceback is where the exception was raised. A C
    function called from Mirage's code (``int()``, a failed dict lookup) has no frame
    of its own, so what it raises counts as Mirage's; what Pillow (or a C function
    Pillow calls) raises has Pillow's frame innermost. Pillow re-raises some errors of
    code it calls back (a file's ``readinto``) as its own, so every exception ``exc``
    was raised from or while handling counts too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _innermost_in_package(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _innermost_in_package(exc: BaseException) -> bool:
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE)


def classify(exc: BaseException, phase: Phase) -> MirageError:
    """The :class:`MirageError` for an exception raised while decoding or encoding.

    Exceptions from Pillow map to data reasons; one raised by Mirage's own code is an
    :class:`InternalError` (callers that can, re-raise the original instead).
    """
    if isinstance(exc, MirageError):
        return exc
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (DecompressionBombError, MemoryError)):
        return TooManyPixels(message)
    if raised_by_mirage(exc):
        return InternalError(message)
    if isinstance(exc, UnidentifiedImageError):
        return UnsupportedImageFormat(message)
    if phase == "decode" and _is_truncation(exc):
        return TruncatedImage(message)
    if isinstance(exc, (*_DATA_ERRORS, EOFError)):
        return DecodeFailed(message) if phase == "decode" else EncodeFailed(message)
    return InternalError(message)


@contextmanager
def translate(phase: Phase) -> Iterator[None]:
    """Re-raise what Pillow raises in the block as the matching :class:`MirageError`.

    Wrap calls into Pillow, not Mirage's own logic. Whatever Mirage's code raises
    in the block (a bug) escapes unchanged, except ``MemoryError``.
    """
    try:
        yield
    except MirageError:
        raise
    except Exception as exc:  # Pillow's failures map to a reason; ours stay bugs
        if raised_by_mirage(exc) and not isinstance(exc, MemoryError):
            raise
        raise classify(exc, phase) from exc


_log = logging.getLogger("mirage")


def reason_of(exc: BaseException, context: str = "") -> str:
    """The reason a transport reports for ``exc``, which escaped an operation.

    A :class:`MirageError` names its own; running out of memory is
    ``too_many_pixels``; anything else is a bug: ``internal_error``, with the
    traceback logged (to the ``mirage`` logger, which a host routes to its sink).
    """
    if isinstance(exc, MirageError) and not isinstance(exc, InternalError):
        return exc.reason
    if isinstance(exc, MemoryError):
        return TooManyPixels.reason
    _log.error("internal error%s", f" in {context}" if context else "", exc_info=exc)
    return InternalError.reason
