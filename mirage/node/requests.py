"""The ``mirage`` process: GenServer-style requests, image work on a thread pool.

Accepted messages (anything else is logged and dropped):

- ``{:"$gen_call", {pid, tag}, {:call, op, source, args}}``, answered ``{tag, reply}``
  with :func:`mirage.server.handle`'s reply term (as the NIF's and the Port's); ``op``
  is an atom, ``source`` a binary, ``{:handle, n}`` or ``nil``, ``args`` a map, and the
  caller's pid owns any image the call produces;
- any other ``$gen_call`` (an unknown request, or one whose terms cannot be read) is
  answered ``{tag, {:error, :internal_error}}``;
- a call arriving while ``max_queue`` calls are already queued or running is answered
  ``{tag, {:error, :overloaded}}`` at once, so a flood costs no memory;
- ``{:"$gen_cast", {:release, [handle]}}`` and ``{:"$gen_cast", {:release_owner, pid}}``.

``net_kernel`` answers ``net_adm:ping/1`` (``Node.ping/1``) and nothing else.

The tag is echoed as received (a reference, or ``[:alias | ref]`` since OTP 24).
Work runs on the pool, never on the event loop, so ticks are answered during long jobs.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor, Future
from typing import Any, TypeGuard

from mirage import etf
from mirage.errors import Overloaded
from mirage.etf import Atom, Pid
from mirage.node.backend import INTERNAL_ERROR, Backend
from mirage.node.connection import Connection, Parts, send_packet
from mirage.server import OK

log = logging.getLogger("mirage.node")

MIRAGE = Atom("mirage")
NET_KERNEL = Atom("net_kernel")
#: The registered names this node has.
SERVED = frozenset((MIRAGE, NET_KERNEL))
GEN_CALL = Atom("$gen_call")
IS_AUTH = Atom("is_auth")
YES = Atom("yes")
GEN_CAST = Atom("$gen_cast")
CALL = Atom("call")
RELEASE = Atom("release")
RELEASE_OWNER = Atom("release_owner")
_SMALL_TUPLE_EXT = 104
OVERLOADED = (Atom("error"), Atom(Overloaded.reason))


def _tuple(value: object, size: int) -> TypeGuard[tuple[Any, ...]]:
    return isinstance(value, tuple) and len(value) == size


def parse_call(request: object) -> tuple[object, object, object] | None:
    """``(op, source, args)`` of a ``{:call, op, source, args}``, else None.

    The parts themselves are checked by :func:`mirage.server.handle`, as for the Port.
    """
    if not (_tuple(request, 4) and request[0] == CALL):
        return None
    return request[1], request[2], request[3]


def caller_of(data: bytes) -> tuple[Pid, object] | None:
    """``{pid, tag}`` of a ``$gen_call`` whose request could not be decoded, if readable.

    Lets such a call be answered with an error instead of timing out.
    """
    if len(data) < 3 or data[0] != etf.VERSION or data[1:3] != bytes((_SMALL_TUPLE_EXT, 3)):
        return None
    try:
        label, size = etf.decode_prefix(b"\x83" + data[3:])
        if label != GEN_CALL:
            return None
        sender, _ = etf.decode_prefix(b"\x83" + data[2 + size :], improper_lists=True)
    except etf.DecodeError:
        return None
    if _tuple(sender, 2) and isinstance(sender[0], Pid):
        return sender
    return None


class RequestServer:
    """Serves the registered name on every connection of one node."""

    def __init__(self, backend: Backend, pool: Executor, max_queue: int = 0) -> None:
        self.backend = backend
        self.pool = pool
        #: Calls queued or running at most (0: no limit).
        self.max_queue = max_queue
        self.in_flight = 0
        # Images held for callers, so that each connection knows only the pids that
        # still hold something: handle -> (connection it was made on, owner).
        self._made: dict[int, tuple[Connection, Pid]] = {}
        self._holding: set[Connection] = set()

    def deliver(
        self, conn: Connection, sender: Pid, name: Atom, data: bytes, start: int = 0
    ) -> None:
        """A message (``data`` from ``start``) sent to one of the :data:`SERVED` names
        (event loop thread)."""
        if name == NET_KERNEL:
            self._net_kernel(conn, data[start:])
            return
        try:
            # views: a source image is not copied again, it stays a view of ``data``.
            message = etf.decode(data, views=True, improper_lists=True, start=start)
        except etf.DecodeError as exc:
            caller = caller_of(data[start:])
            log.warning("unreadable message from %s: %s", sender, exc)
            if caller is not None:
                conn.write(send_packet(caller[0], (caller[1], INTERNAL_ERROR)))
            return
        if _tuple(message, 3) and message[0] == GEN_CALL:
            caller = message[1]
            if _tuple(caller, 2) and isinstance(caller[0], Pid):
                self._call(conn, caller[0], caller[1], message[2])
                return
        elif _tuple(message, 2) and message[0] == GEN_CAST:
            if self._cast(message[1]):
                return
        log.warning("dropped a message from %s: %r", sender, _short(message))

    def _net_kernel(self, conn: Connection, data: bytes) -> None:
        # net_adm:ping/1 is a gen_server call of {is_auth, Node}; reaching this point
        # already took the cookie, so the answer is yes.
        try:
            message = etf.decode(data, improper_lists=True)
        except etf.DecodeError:
            return
        if _tuple(message, 3) and message[0] == GEN_CALL:
            caller, request = message[1], message[2]
            if _tuple(caller, 2) and isinstance(caller[0], Pid) and _tuple(request, 2):
                if request[0] == IS_AUTH:
                    conn.write(send_packet(caller[0], (caller[1], YES)))

    def _call(self, conn: Connection, caller: Pid, tag: object, request: object) -> None:
        parsed = parse_call(request)
        if parsed is None:
            log.warning("malformed request from %s: %r", caller, _short(request))
            conn.write(send_packet(caller, (tag, INTERNAL_ERROR)))
            return
        if self.max_queue and self.in_flight >= self.max_queue:
            conn.write(send_packet(caller, (tag, OVERLOADED)))
            return
        self.in_flight += 1
        future = self.pool.submit(self._work, caller, tag, *parsed)
        loop = asyncio.get_running_loop()

        def finished(done: Future[tuple[Parts, int | None]]) -> None:
            try:
                loop.call_soon_threadsafe(self._done, conn, caller, tag, done)
            except RuntimeError:
                pass  # the node stopped (loop closed) while this job ran: nobody to tell

        future.add_done_callback(finished)

    def _work(
        self, caller: Pid, tag: object, op: Any, source: object, args: Any
    ) -> tuple[Parts, int | None]:
        # Pool thread: the work and the reply's encoding both stay off the loop.
        reply = self.backend.call(op, source, args, caller)
        try:
            return send_packet(caller, (tag, reply)), _held_handle(reply)
        except etf.EncodeError:
            log.exception("reply to %s for %s is not encodable", caller, op)
            return send_packet(caller, (tag, INTERNAL_ERROR)), _held_handle(reply)

    def _done(
        self, conn: Connection, caller: Pid, tag: object, done: Future[tuple[Parts, int | None]]
    ) -> None:
        self.in_flight -= 1
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            log.error("request from %s failed", caller, exc_info=error)
            conn.write(send_packet(caller, (tag, INTERNAL_ERROR)))
            return
        packet, handle = done.result()
        if conn.closed:
            # The peer left while this ran: nobody can release what it made.
            self.backend.release_owner(caller)
            self._drop_owner(caller)
            return
        if handle is not None:
            conn.owners.setdefault(caller, set()).add(handle)
            self._made[handle] = (conn, caller)
            self._holding.add(conn)
        conn.write(packet)

    def _cast(self, request: object) -> bool:
        if _tuple(request, 2) and request[0] == RELEASE and isinstance(request[1], list):
            for handle in request[1]:
                if type(handle) is int:
                    self.backend.release(handle)
                    self._forget(handle)
            return True
        if _tuple(request, 2) and request[0] == RELEASE_OWNER and isinstance(request[1], Pid):
            self.backend.release_owner(request[1])
            self._drop_owner(request[1])
            return True
        return False

    def _forget(self, handle: int) -> None:
        # An owner whose last image goes is forgotten: a connection remembers only
        # the pids that hold something, not every pid that ever made a call.
        entry = self._made.pop(handle, None)
        if entry is None:
            return
        conn, owner = entry
        handles = conn.owners.get(owner)
        if handles is not None:
            handles.discard(handle)
            if not handles:
                del conn.owners[owner]

    def _drop_owner(self, owner: Pid) -> None:
        for conn in self._holding:
            for handle in conn.owners.pop(owner, ()):
                self._made.pop(handle, None)

    def connection_lost(self, conn: Connection) -> None:
        """Release the images of every pid that holds images made on ``conn``."""
        for owner in list(conn.owners):
            self.backend.release_owner(owner)
            self._drop_owner(owner)
        conn.owners.clear()
        self._holding.discard(conn)


def _held_handle(reply: object) -> int | None:
    """The handle of the image an ``{:ok, _, {handle, _, _, _}, _}`` reply holds, if any."""
    if _tuple(reply, 4) and reply[0] == OK and _tuple(reply[2], 4) and type(reply[2][0]) is int:
        return int(reply[2][0])
    return None


def _short(term: object) -> str:
    text = repr(term)
    return text if len(text) <= 200 else text[:200] + "..."
