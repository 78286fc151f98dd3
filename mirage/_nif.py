"""The Python half of the NIF: cffi ``extern "Python"`` callbacks over mirage.image.

Imported only inside the BEAM, by the embedding init code compiled into
``priv/mirage_nif.so`` (see c_src/build.py and c_src/py_api.h). Every callback
catches every exception and answers a reason code, so no Python failure can look
like success to C.
"""

from __future__ import annotations

import sys
import traceback
import warnings

from mirage_nif import ffi, lib  # the embedding module, made by cffi at start-up

from mirage import image, output
from mirage.errors import REASONS, InternalError, MirageError, classify
from mirage.formats import FORMATS
from mirage.registry import Registry

_OK = 0
_INTERNAL = 1 + REASONS.index(InternalError.reason)

_images: Registry[image.Image] = Registry()


def _sink(level: int, line: str) -> None:
    data = line.encode("utf-8", "replace")
    lib.mirage_log(level, data, len(data))


output.install(_sink)
# In a long-running VM "once per location" would report only the first bad upload.
warnings.filterwarnings("always", category=UserWarning)


def _code(exc: BaseException) -> int:
    if isinstance(exc, MirageError):
        error = exc
    elif isinstance(exc, MemoryError):
        error = classify(exc, "encode")
    else:
        error = InternalError(repr(exc))  # mirage.image maps Pillow's own errors
    if isinstance(error, InternalError):
        print("".join(traceback.format_exception(exc)), file=sys.stderr)
    return 1 + REASONS.index(error.reason)


def _unexpected(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
    # cffi's last resort when a callback raises anyway; it then returns `error`.
    print("".join(traceback.format_exception(exc_type, exc, tb)), file=sys.stderr)


def _hold(img: image.Image, info) -> None:  # type: ignore[no-untyped-def]
    info.format = FORMATS.index(img.format)
    info.width = img.width
    info.height = img.height
    info.handle = _images.add(img)


@ffi.def_extern(error=0, onerror=_unexpected)
def mirage_py_start() -> int:
    return 1


@ffi.def_extern(error=_INTERNAL, onerror=_unexpected)
def mirage_py_from_bytes(data, size, max_pixels, info) -> int:  # type: ignore[no-untyped-def]
    try:
        img = image.from_bytes(ffi.buffer(data, size), max_pixels=max_pixels)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reason code
        return _code(exc)
    _hold(img, info)
    return _OK


@ffi.def_extern(error=_INTERNAL, onerror=_unexpected)
def mirage_py_resize(handle, width, height, max_pixels, info, out) -> int:  # type: ignore[no-untyped-def]
    try:
        source = _images.get(handle)
        data, resized = image.resize(source, width, height, max_pixels=max_pixels)
        target = lib.mirage_output_alloc(out, len(data))
        if target == ffi.NULL:
            raise MemoryError("cannot allocate the result binary")
        ffi.memmove(target, data, len(data))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reason code
        return _code(exc)
    _hold(resized, info)
    return _OK


@ffi.def_extern(onerror=_unexpected)
def mirage_py_release(handles, count) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        _images.release(handles[i])


@ffi.def_extern(error=-1, onerror=_unexpected)
def mirage_py_live_handles() -> int:
    return len(_images)
