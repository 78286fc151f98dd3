"""TEMPORARY stand-in for ``mirage.service.Service`` and ``mirage.server.handle``.

Branch core-py owns the real request path (PLAN.md, "Python request path"); until it
is merged, :mod:`mirage.port` falls back to this thin version of the same interface
so the port program and its tests can run. Delete this file once ``mirage/server.py``
is on main.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Hashable, Mapping
from typing import Any

from mirage import ops
from mirage.errors import InternalError, MirageError, classify
from mirage.etf import Atom
from mirage.image import Image
from mirage.registry import Registry

_OK = Atom("ok")
_ERROR = Atom("error")
_RELEASED = Atom("released")
_HANDLE = Atom("handle")


class Service:
    """Held images by handle, each registered under an owner."""

    def __init__(self, max_handles: int | None = None, max_bytes: int | None = None) -> None:
        self.images: Registry[Image] = Registry()
        self._owners: dict[Hashable, set[int]] = {}
        self._lock = threading.Lock()

    def hold(self, held: Image, owner: Hashable | None) -> int:
        handle = self.images.add(held)
        with self._lock:
            self._owners.setdefault(owner, set()).add(handle)
        return handle

    def release(self, handle: int) -> None:
        self.images.release(handle)
        with self._lock:
            for handles in self._owners.values():
                handles.discard(handle)

    def release_owner(self, owner: Hashable) -> int:
        with self._lock:
            handles = self._owners.pop(owner, set())
        for handle in handles:
            self.images.release(handle)
        return len(handles)

    def live_handles(self) -> int:
        return len(self.images)


def handle(
    service: Service, op: str, source: object, args: Mapping[str, Any], owner: Hashable
) -> object:
    """The NIF's reply term for one request."""
    if isinstance(source, tuple) and len(source) == 2 and source[0] == _HANDLE:
        try:
            source = service.images.get(source[1])
        except KeyError:
            return _RELEASED
    try:
        outcome = ops.OPS[str(op)](source, args)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
        error = exc if isinstance(exc, MirageError) else None
        if error is None:
            error = classify(exc, "encode") if isinstance(exc, MemoryError) else None
        if error is None:
            error = InternalError(repr(exc))
        if isinstance(error, InternalError):
            print("".join(traceback.format_exception(exc)), file=sys.stderr)
        return (_ERROR, Atom(error.reason))
    image = None
    if outcome.image is not None:
        held = outcome.image
        image = (service.hold(held, owner), Atom(held.format), held.width, held.height)
    return (_OK, outcome.data, image, outcome.term)
