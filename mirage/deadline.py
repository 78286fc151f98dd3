"""Cooperative deadlines: a call stops at its next safe point once it is no longer
wanted.

A transport opens :func:`applied` around each call with the caller's ``timeout``
(milliseconds, from the call's arrival in Python) and, where it can tell, whether the
caller is still alive (the NIF asks ERTS whether the calling process still exists).
:mod:`mirage.image` calls :func:`check` at safe points: after the header, between
frames, between decoding, resampling and encoding. Work inside one Pillow call
(decoding one frame, encoding the result) is not interrupted, so the deadline is
cooperative: a call may finish one such step past it, never more.

The deadline lives in a context variable, so threads serving calls at the same time
each see their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from mirage.errors import MirageError


class Timeout(MirageError):
    """The call's deadline passed, or its caller died, before it finished.

    A transport reason (as Elixir's ``:timeout``), so not in :data:`mirage.errors.REASONS`.
    """

    reason = "timeout"


@dataclass(frozen=True)
class Deadline:
    #: ``time.monotonic()`` after which the call stops; ``None`` for no limit.
    expires: float | None
    #: Answers False once nobody waits for the answer; ``None`` when unknown.
    alive: Callable[[], bool] | None


_current: ContextVar[Deadline | None] = ContextVar("mirage_deadline", default=None)


def _timeout_ms(timeout: object) -> int | None:
    # Anything but a positive integer (Elixir's :infinity, absent) means no limit.
    if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
        return timeout
    return None


class applied:
    """Run the block under a deadline ``timeout`` ms from now, and ``alive``.

    A class, not a generator: it wraps every call, so it is kept cheap.
    """

    __slots__ = ("_deadline", "_token")

    def __init__(self, timeout: object = None, alive: Callable[[], bool] | None = None) -> None:
        ms = _timeout_ms(timeout)
        expires = None if ms is None else time.monotonic() + ms / 1000
        self._deadline = Deadline(expires, alive) if expires or alive else None

    def __enter__(self) -> None:
        self._token = _current.set(self._deadline)

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def check() -> None:
    """Raise :class:`Timeout` if the current call is past its deadline or unwanted."""
    deadline = _current.get()
    if deadline is None:
        return
    if deadline.expires is not None and time.monotonic() > deadline.expires:
        raise Timeout("the call's deadline passed")
    if deadline.alive is not None and not deadline.alive():
        raise Timeout("the caller is gone")
