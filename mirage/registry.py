"""Handles for Python objects held on behalf of another runtime (the BEAM).

A handle is a positive int that is never reused, so a stale handle can never reach
another caller's object. Each held object may name an owner (a Port or Node worker
holds images for the Erlang process that asked for them, and drops them all when
that process exits) and carries a size, so a registry can cap both how many objects
and how many bytes it holds.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

from mirage.errors import Overloaded

T = TypeVar("T")


class _Entry(NamedTuple, Generic[T]):
    obj: T
    owner: Hashable | None
    size: int


class Registry(Generic[T]):
    """A thread-safe map from handles to held objects, with optional caps.

    ``max_handles`` and ``max_bytes`` (``None``: no cap) bound what :meth:`add` accepts;
    an add over either cap raises :class:`~mirage.errors.Overloaded` and holds nothing.
    """

    def __init__(self, max_handles: int | None = None, max_bytes: int | None = None) -> None:
        self.max_handles = max_handles
        self.max_bytes = max_bytes
        self._entries: dict[int, _Entry[T]] = {}
        self._owned: dict[Hashable, set[int]] = {}
        self._bytes = 0
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, obj: T, *, owner: Hashable | None = None, size: int = 0) -> int:
        """Hold ``obj`` (about ``size`` bytes) for ``owner``; return its new handle."""
        with self._lock:
            if self.max_handles is not None and len(self._entries) >= self.max_handles:
                raise Overloaded(f"already holding {len(self._entries)} images")
            if self.max_bytes is not None and self._bytes + size > self.max_bytes:
                raise Overloaded(
                    f"holding {self._bytes} bytes; {size} more exceed {self.max_bytes}"
                )
            handle = next(self._next)
            self._entries[handle] = _Entry(obj, owner, size)
            self._bytes += size
            if owner is not None:
                self._owned.setdefault(owner, set()).add(handle)
        return handle

    def get(self, handle: int) -> T:
        """The object for ``handle``; ``KeyError`` if it was released or never made."""
        return self._entries[handle].obj

    def release(self, handle: int) -> None:
        """Drop ``handle``; releasing an unknown handle does nothing (idempotent)."""
        with self._lock:
            self._drop(handle)

    def release_owner(self, owner: Hashable) -> int:
        """Drop every handle held for ``owner``; return how many there were."""
        return len(self.take_owner(owner))

    def take_owner(self, owner: Hashable) -> list[T]:
        """Drop every handle held for ``owner``; return the objects they held."""
        with self._lock:
            handles = self._owned.pop(owner, set())
            return [obj for handle in handles if (obj := self._drop(handle)) is not None]

    def _drop(self, handle: int) -> T | None:
        entry = self._entries.pop(handle, None)
        if entry is None:
            return None
        self._bytes -= entry.size
        if entry.owner is not None:
            owned = self._owned.get(entry.owner)
            if owned is not None:
                owned.discard(handle)
                if not owned:
                    del self._owned[entry.owner]
        return entry.obj

    def full(self) -> bool:
        """Whether no further object can be added (a cap is already reached)."""
        return (self.max_handles is not None and len(self._entries) >= self.max_handles) or (
            self.max_bytes is not None and self._bytes >= self.max_bytes
        )

    @property
    def held_bytes(self) -> int:
        """The sum of the sizes of everything held."""
        return self._bytes

    def owners(self) -> int:
        """How many distinct owners hold at least one handle."""
        return len(self._owned)

    def __len__(self) -> int:
        return len(self._entries)
