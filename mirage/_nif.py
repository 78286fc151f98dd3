"""The Python half of the NIF: cffi ``extern "Python"`` callbacks over mirage.service.

Imported only inside the BEAM, by the embedding init code compiled into
``priv/mirage_nif.so`` (see c_src/build.py and c_src/py_api.h). This module only
marshals: C values in, :meth:`Service.call <mirage.service.Service.call>`, C values
out, plus the choice to copy or borrow a source. Every callback catches every
exception and answers a reason code, so no Python failure can look like success to C.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from mirage_nif import ffi, lib  # the embedding module, made by cffi at start-up

from mirage import etf, host
from mirage.deadline import Timeout
from mirage.errors import REASONS, InternalError, reason_of
from mirage.formats import FORMATS
from mirage.service import Reply, Service, Source

_OK = 0
# Sources up to this size are copied: reading bytes is faster than reading a view
# in place, and the copy is cheap. Larger ones are borrowed: under ERTS's malloc
# settings a copy over 128 KiB is freshly mapped, and faults in, on every call.
_COPY_BELOW = 1 << 17
_INTERNAL = 1 + REASONS.index(InternalError.reason)
# The held image was released meanwhile (owned by c_src/py_api.h).
_RELEASED: int = lib.MIRAGE_CODE_RELEASED
# The call stopped past its deadline or its caller died: C answers {error, timeout}.
_TIMEOUT: int = lib.MIRAGE_CODE_TIMEOUT

# The NIF's images live until the BEAM garbage-collects their resources (or
# Mirage.release/1): no owners and no caps.
_service = Service()


def _sink(level: int, line: str) -> None:
    data = line.encode("utf-8", "replace")
    lib.mirage_log(level, data, len(data))


host.setup(_sink)
# Pillow (imported above) has loaded libtiff, which writes to fd 2 unless told.
lib.mirage_route_codec_messages()


def _code(reason: str) -> int:
    if reason == Timeout.reason:
        return _TIMEOUT
    # A reason outside the core set (a transport's own) cannot happen without caps.
    return 1 + REASONS.index(reason) if reason in REASONS else _INTERNAL


def _unexpected(
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    # cffi's last resort when a callback raises anyway; it then returns `error`.
    print("".join(traceback.format_exception(exc_type, exc, tb)), file=sys.stderr)


@functools.lru_cache(maxsize=256)
def _arguments(encoded: bytes) -> Mapping[str, object]:
    # Option maps repeat from call to call (the limits are in every one); every call
    # with the same bytes shares the decoded map, so it is read-only.
    decoded = etf.decode(encoded)
    if not isinstance(decoded, dict):
        raise TypeError(f"arguments must be a map, got {type(decoded).__name__}")
    return MappingProxyType(decoded)


def _caller_alive() -> bool:
    # ERTS knows whether the process that called the NIF still exists.
    return bool(lib.mirage_caller_alive())


def _write(out: Any, size: int) -> Any:
    target = lib.mirage_output_alloc(out, size)
    if target == ffi.NULL:
        raise MemoryError(f"cannot allocate a {size}-byte binary")
    return ffi.buffer(target, size)


def _deliver(reply: Reply, image: Any, data_out: Any, term_out: Any) -> int:
    if reply.kind == "released":
        return _RELEASED
    if reply.kind == "error":
        return _code(reply.reason or InternalError.reason)
    try:
        if reply.data is not None:
            with reply.data as encoded:
                encoded.read_into(memoryview(_write(data_out, len(encoded))))
        if reply.term is not None:
            term = etf.encode(reply.term)
            _write(term_out, len(term))[:] = term
    except BaseException:
        if reply.image is not None:
            _service.release(reply.image.handle)  # C never learns the handle
        raise
    if reply.image is not None:
        held = reply.image
        image.format = FORMATS.index(held.format)
        image.width = held.width
        image.height = held.height
        image.handle = held.handle  # last: C releases it if anything failed
    return _OK


@ffi.def_extern(error=0, onerror=_unexpected)
def mirage_py_start() -> int:
    return 1


@ffi.def_extern(error=_INTERNAL, onerror=_unexpected)
def mirage_py_call(
    op: Any,
    handle: int,
    data: Any,
    size: int,
    args: Any,
    args_size: int,
    image: Any,
    data_out: Any,
    term_out: Any,
) -> int:
    source: Source = None
    try:
        if handle > 0:
            source = handle  # C checked it first; the service notices a release since
        elif data != ffi.NULL and size <= _COPY_BELOW:
            source = ffi.buffer(data, size)[:]
        elif data != ffi.NULL:
            # Borrowed for this call only: operations that keep an image copy it.
            source = memoryview(ffi.buffer(data, size))
        arguments = _arguments(ffi.buffer(args, args_size)[:])
        reply = _service.call(ffi.string(op).decode(), source, arguments, alive=_caller_alive)
        return _deliver(reply, image, data_out, term_out)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reason code
        return _code(reason_of(exc, "the NIF's marshalling"))
    finally:
        if isinstance(source, memoryview):
            source.release()  # any later use raises instead of reading freed memory


@ffi.def_extern(onerror=_unexpected)
def mirage_py_release(handles: Any, count: int) -> None:
    for i in range(count):
        _service.release(handles[i])


@ffi.def_extern(error=-1, onerror=_unexpected)
def mirage_py_live_handles() -> int:
    return _service.live_handles()
