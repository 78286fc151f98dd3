"""The Python half of the NIF: cffi ``extern "Python"`` callbacks over mirage.ops.

Imported only inside the BEAM, by the embedding init code compiled into
``priv/mirage_nif.so`` (see c_src/build.py and c_src/py_api.h). Every callback
catches every exception and answers a reason code, so no Python failure can look
like success to C.
"""

from __future__ import annotations

import functools
import sys
import traceback
import warnings

from mirage_nif import ffi, lib  # the embedding module, made by cffi at start-up

from mirage import etf, memory, ops, output
from mirage.codec import Encoded
from mirage.errors import REASONS, InternalError, MirageError, classify
from mirage.formats import FORMATS
from mirage.image import Image
from mirage.registry import Registry

_OK = 0
# Sources up to this size are copied: reading bytes is faster than reading a view
# in place, and the copy is cheap. Larger ones are borrowed: under ERTS's malloc
# settings a copy over 128 KiB is freshly mapped, and faults in, on every call.
_COPY_BELOW = 1 << 17
_INTERNAL = 1 + REASONS.index(InternalError.reason)
# The held image was released meanwhile (owned by c_src/py_api.h).
_RELEASED = lib.MIRAGE_CODE_RELEASED

_images: Registry[Image] = Registry()


def _sink(level: int, line: str) -> None:
    data = line.encode("utf-8", "replace")
    lib.mirage_log(level, data, len(data))


output.install(_sink)
memory.configure()
# In a long-running VM "once per location" would report only the first bad upload.
warnings.filterwarnings("always", category=UserWarning)


def _code(exc: BaseException) -> int:
    if isinstance(exc, MirageError):
        error = exc
    elif isinstance(exc, MemoryError):
        error = classify(exc, "encode")
    else:
        # mirage.image maps Pillow's own errors; anything else here is a bug.
        error = InternalError(repr(exc))
    if isinstance(error, InternalError):
        print("".join(traceback.format_exception(exc)), file=sys.stderr)
    return 1 + REASONS.index(error.reason)


def _unexpected(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
    # cffi's last resort when a callback raises anyway; it then returns `error`.
    print("".join(traceback.format_exception(exc_type, exc, tb)), file=sys.stderr)


@functools.lru_cache(maxsize=256)
def _arguments(encoded: bytes) -> dict:  # type: ignore[type-arg]
    # Option maps repeat from call to call (the limits are in every one); callers
    # treat the decoded dict as read-only.
    return etf.decode(encoded)


def _write(out, size: int):  # type: ignore[no-untyped-def]
    target = lib.mirage_output_alloc(out, size)
    if target == ffi.NULL:
        raise MemoryError(f"cannot allocate a {size}-byte binary")
    return ffi.buffer(target, size)


def _deliver(outcome: ops.Outcome, image, data_out, term_out) -> None:  # type: ignore[no-untyped-def]
    if outcome.data is not None:
        encoded: Encoded = outcome.data
        with encoded:
            encoded.read_into(memoryview(_write(data_out, len(encoded))))
    if outcome.term is not None:
        term = etf.encode(outcome.term)
        _write(term_out, len(term))[:] = term
    if outcome.image is not None:
        held = outcome.image
        image.format = FORMATS.index(held.format)
        image.width = held.width
        image.height = held.height
        image.handle = _images.add(held)  # last: C releases it if anything failed


@ffi.def_extern(error=0, onerror=_unexpected)
def mirage_py_start() -> int:
    return 1


@ffi.def_extern(error=_INTERNAL, onerror=_unexpected)
def mirage_py_call(op, handle, data, size, args, args_size, image, data_out, term_out) -> int:  # type: ignore[no-untyped-def]
    source: ops.Source = None
    try:
        if handle > 0:
            try:
                source = _images.get(handle)
            except KeyError:
                # Mirage.release/1 won the race with this call (C checked first).
                return _RELEASED
        elif data != ffi.NULL and size <= _COPY_BELOW:
            source = ffi.buffer(data, size)[:]
        elif data != ffi.NULL:
            # Borrowed for this call only: operations that keep an image copy it.
            source = memoryview(ffi.buffer(data, size))
        else:
            source = None
        arguments = _arguments(ffi.buffer(args, args_size)[:])
        outcome = ops.OPS[ffi.string(op).decode()](source, arguments)
        _deliver(outcome, image, data_out, term_out)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reason code
        return _code(exc)
    finally:
        if isinstance(source, memoryview):
            source.release()  # any later use raises instead of reading freed memory
    return _OK


@ffi.def_extern(onerror=_unexpected)
def mirage_py_release(handles, count) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        _images.release(handles[i])


@ffi.def_extern(error=-1, onerror=_unexpected)
def mirage_py_live_handles() -> int:
    return len(_images)
