"""Handles for Python objects held on behalf of another runtime (the BEAM).

A handle is a positive int that is never reused, so a stale handle can never reach
another caller's image.
"""

from __future__ import annotations

import itertools
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A thread-safe map from handles to held objects."""

    def __init__(self) -> None:
        self._objects: dict[int, T] = {}
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, obj: T) -> int:
        with self._lock:
            handle = next(self._next)
            self._objects[handle] = obj
        return handle

    def get(self, handle: int) -> T:
        """The object for ``handle``; ``KeyError`` if it was released or never made."""
        return self._objects[handle]

    def release(self, handle: int) -> None:
        """Drop ``handle``; releasing an unknown handle does nothing (idempotent)."""
        with self._lock:
            self._objects.pop(handle, None)

    def __len__(self) -> int:
        return len(self._objects)
