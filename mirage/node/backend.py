"""The request path the node's work runs on: mirage.server over mirage.service.

``mirage.server.handle(service, op, source, args, owner)`` answers the reply term the
NIF and the Port answer too. Until that module exists, :class:`LocalBackend` gives the
same shapes from :mod:`mirage.ops` directly (a stand-in, to be removed with it).
"""

from __future__ import annotations

import importlib
import logging
import threading
import traceback
from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from mirage import ops
from mirage.errors import InternalError, MirageError, classify
from mirage.etf import Atom
from mirage.image import Image

log = logging.getLogger("mirage.node")

OK = Atom("ok")
ERROR = Atom("error")
RELEASED = Atom("released")
HANDLE = Atom("handle")
INTERNAL_ERROR = (ERROR, Atom(InternalError.reason))


class Backend(Protocol):
    """What the node needs of the request path (all methods thread-safe)."""

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        """The reply term for one request; never raises."""
        ...

    def release(self, handle: int) -> None: ...

    def release_owner(self, owner: Hashable) -> int: ...


class ServerBackend:
    """:mod:`mirage.server` on one :class:`mirage.service.Service`."""

    def __init__(self, server: Any, service: Any) -> None:
        self._server = server
        self._service = service

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        return self._server.handle(self._service, op, source, dict(args), owner)

    def release(self, handle: int) -> None:
        self._service.release(handle)

    def release_owner(self, owner: Hashable) -> int:
        return int(self._service.release_owner(owner))


class LocalBackend:
    """The same reply terms straight from :mod:`mirage.ops`, images held per owner."""

    def __init__(self) -> None:
        self._images: dict[int, tuple[Hashable, Image]] = {}
        self._next = 0
        self._lock = threading.Lock()

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        run = ops.OPS.get(op)
        if run is None:
            return INTERNAL_ERROR
        if isinstance(source, tuple):
            held = self._images.get(source[1])
            if held is None:
                return RELEASED
            source = held[1]
        try:
            outcome = run(source, args)  # type: ignore[arg-type]
            data = None
            if outcome.data is not None:
                with outcome.data as encoded:
                    data = encoded.to_bytes()
        except MirageError as exc:
            return (ERROR, Atom(exc.reason))
        except MemoryError as exc:
            return (ERROR, Atom(classify(exc, "decode").reason))
        except Exception as exc:  # noqa: BLE001 - anything else is a bug: logged, answered
            log.error("%s", "".join(traceback.format_exception(exc)).rstrip())
            return INTERNAL_ERROR
        image = None
        if outcome.image is not None:
            held_image = outcome.image
            with self._lock:
                self._next += 1
                handle = self._next
                self._images[handle] = (owner, held_image)
            image = (handle, Atom(held_image.format), held_image.width, held_image.height)
        return (OK, data, image, outcome.term)

    def release(self, handle: int) -> None:
        with self._lock:
            self._images.pop(handle, None)

    def release_owner(self, owner: Hashable) -> int:
        with self._lock:
            gone = [h for h, (o, _) in self._images.items() if o == owner]
            for handle in gone:
                del self._images[handle]
        return len(gone)

    def live_handles(self) -> int:
        return len(self._images)


def default_backend() -> Backend:
    """:class:`ServerBackend` where mirage.server exists, else :class:`LocalBackend`."""
    try:
        server = importlib.import_module("mirage.server")
        service = importlib.import_module("mirage.service")
    except ImportError:
        log.info("mirage.server not present: using the node's local request path")
        return LocalBackend()
    return ServerBackend(server, service.Service())
