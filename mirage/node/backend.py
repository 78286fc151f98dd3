"""The request path the node's work runs on: :func:`mirage.server.handle` over a Service.

Kept behind a small protocol so the node's tests can wrap it (e.g. to make a job slow).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from mirage import server
from mirage.errors import InternalError
from mirage.etf import Atom
from mirage.service import Service

INTERNAL_ERROR = (server.ERROR, Atom(InternalError.reason))


class Backend(Protocol):
    """What the node needs of the request path (every method thread-safe)."""

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        """The reply term for one request; never raises."""
        ...

    def release(self, handle: int) -> None: ...

    def release_owner(self, owner: Hashable) -> int: ...


class ServerBackend:
    """:func:`mirage.server.handle` on one :class:`~mirage.service.Service`."""

    def __init__(self, service: Service | None = None) -> None:
        self.service = service if service is not None else Service()

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        return server.handle(self.service, op, source, args, owner)

    def release(self, handle: int) -> None:
        self.service.release(handle)

    def release_owner(self, owner: Hashable) -> int:
        return self.service.release_owner(owner)
