"""The one request path every transport (NIF, Port, Node) runs an operation through.

A transport decodes a request into an operation name, a source and the argument map,
and hands them to :meth:`Service.call`, which

- resolves a held image's handle (one released meanwhile gives :data:`RELEASED`),
- runs the operation (:func:`mirage.ops.run`) under the call's deadline (the
  ``timeout`` argument, milliseconds; see :mod:`mirage.deadline`),
- holds a produced image under a new handle for its owner, within the caps,
- caps the lines one call may log (:func:`mirage.output.one_call`),
- maps every exception to a reason (bugs to ``internal_error``, traceback logged),

and answers a :class:`Reply` the transport encodes its own way. Nothing here knows
about cffi, frames or terms.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mirage import deadline, memory, ops, output
from mirage.buffers import Encoded
from mirage.errors import Overloaded, reason_of
from mirage.image import Image, footprint
from mirage.registry import Registry

#: A request's source: bytes (possibly a borrowed view), a held image's handle, or none.
Source = bytes | memoryview | int | None


@dataclass(frozen=True)
class Held:
    """A newly held image as the caller sees it: its handle and what it is."""

    handle: int
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class Reply:
    """What a call answered.

    ``kind`` is ``"ok"`` (with any of ``data``, ``image`` and ``term``), ``"error"``
    (with ``reason``) or ``"released"`` (the source handle was released before the
    call could use it). ``data``, when present, is owned by the receiver: read it out
    and close it.
    """

    kind: Literal["ok", "error", "released"]
    data: Encoded | None = None
    image: Held | None = None
    term: object = None
    reason: str | None = None

    @classmethod
    def error(cls, reason: str) -> Reply:
        return cls("error", reason=reason)


#: The reply for a source handle that was released (or never issued).
RELEASED = Reply("released")
#: The reply when the images held have reached a cap.
OVERLOADED = Reply.error(Overloaded.reason)


def _held_pixels(image: Image) -> int:
    # Only decoded pixels take memory worth giving back; a header-only image does not.
    return image.width * image.height * image.frames if image._pixels is not None else 0


class Service:
    """Runs operations and holds the images they produce.

    ``max_handles`` and ``max_bytes`` (``None``: no cap) bound the held images; a call
    whose result would exceed either answers the reason ``overloaded`` and holds
    nothing. Thread-safe: a transport may call from several threads at once.
    """

    def __init__(self, max_handles: int | None = None, max_bytes: int | None = None) -> None:
        self._images: Registry[Image] = Registry(max_handles, max_bytes)

    def call(
        self,
        op: str,
        source: Source,
        args: Mapping[str, Any],
        owner: Hashable | None = None,
        alive: Callable[[], bool] | None = None,
    ) -> Reply:
        """Run ``op`` on ``source`` with ``args``; never raises.

        The call stops at its next safe point, answering the reason ``timeout``, once
        ``args["timeout"]`` milliseconds have passed or ``alive`` (where the transport
        can tell whether anyone still waits) answers False.
        """
        outcome: ops.Outcome | None = None
        if op in ops.HOLDS_RESULT and self._images.full():
            return OVERLOADED  # refused before doing the work
        try:
            resolved: ops.Source
            if isinstance(source, bool):
                raise TypeError("a source is bytes, a handle or None, not a bool")
            if isinstance(source, int):
                try:
                    resolved = self._images.get(source)
                except KeyError:
                    # release/1 (or the owner's exit) won the race with this call.
                    return RELEASED
            else:
                resolved = source
            # What one call may log is capped (mirage.output); a large call gives its
            # freed memory back to the OS when it ends (mirage.memory).
            with (
                memory.returned_after(),
                output.one_call(),
                deadline.applied(args.get("timeout"), alive=alive),
            ):
                outcome = ops.run(op, resolved, args)
            held = self._hold(outcome.image, owner) if outcome.image is not None else None
            return Reply("ok", data=outcome.data, image=held, term=outcome.term)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            if outcome is not None and outcome.data is not None:
                outcome.data.close()
            return Reply.error(reason_of(exc, op))

    def _hold(self, image: Image, owner: Hashable | None) -> Held:
        handle = self._images.add(image, owner=owner, size=footprint(image))
        return Held(handle, image.format, image.width, image.height)

    def release(self, handle: int) -> None:
        """Drop a held image; idempotent, unknown handles are ignored. Dropping a large
        one gives the freed memory back to the OS (:func:`mirage.memory.trim`)."""
        try:
            pixels = _held_pixels(self._images.get(handle))
        except KeyError:
            return
        self._images.release(handle)
        if pixels >= memory.TRIM_ABOVE:
            memory.trim()

    def release_owner(self, owner: Hashable) -> int:
        """Drop every image held for ``owner`` (a process that exited); how many.
        Dropping large ones gives the freed memory back, as :meth:`release` does."""
        images = self._images.take_owner(owner)
        if sum(_held_pixels(image) for image in images) >= memory.TRIM_ABOVE:
            memory.trim()
        return len(images)

    def live_handles(self) -> int:
        """How many images are held."""
        return len(self._images)

    def held_bytes(self) -> int:
        """The estimated memory of the held images (see :func:`mirage.image.footprint`)."""
        return self._images.held_bytes
