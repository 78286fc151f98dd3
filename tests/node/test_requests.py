"""The ``mirage`` process without a network: request shapes, replies, owners, releases."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from mirage import etf
from mirage.etf import Atom, ImproperList, Pid, Reference
from mirage.node.backend import INTERNAL_ERROR, ServerBackend
from mirage.node.connection import PASS_THROUGH, SEND, Parts
from mirage.node.requests import (
    GEN_CALL,
    GEN_CAST,
    MIRAGE,
    NET_KERNEL,
    RequestServer,
    caller_of,
    parse_call,
)
from tests.conftest import encode, gradient

CALLER = Pid(Atom("erl@host"), 90, 0, 3)
OTHER = Pid(Atom("erl@host"), 91, 0, 3)
REF = Reference(Atom("erl@host"), 3, (1, 2, 3))
TAG = ImproperList((Atom("alias"),), REF)
LIMITS = {Atom("max_pixels"): 10**8, Atom("allowed_formats"): [Atom("png"), Atom("jpg")]}
PNG = encode(gradient((20, 10)), "PNG")


@dataclass(eq=False)
class FakeConnection:
    """What RequestServer uses of a Connection: decoded SENDs in ``sent``."""

    owners: dict[Pid, set[int]] = field(default_factory=dict)
    closed: bool = False
    sent: list[tuple[Pid, Any]] = field(default_factory=list)

    def write(self, parts: Parts) -> None:
        body = b"".join(parts)
        assert body[0] == PASS_THROUGH
        control, size = etf.decode_prefix(body[1:])
        assert isinstance(control, tuple) and control[0] == SEND
        self.sent.append((control[2], etf.decode(body[1 + size :], improper_lists=True)))


def gen_call(request: object, tag: object = TAG, caller: Pid = CALLER) -> bytes:
    return etf.encode((GEN_CALL, (caller, tag), request))


def call(op: str, source: object = None, **args: Any) -> tuple[object, ...]:
    return (Atom("call"), Atom(op), source, {**LIMITS, **{Atom(k): v for k, v in args.items()}})


async def settled(server: RequestServer) -> None:
    """Returns once every call given to ``server`` has been answered."""
    while server.in_flight:
        await asyncio.sleep(0.01)


def serve(
    messages: list[bytes],
    conn: FakeConnection,
    backend: ServerBackend,
    server: RequestServer | None = None,
) -> None:
    """Deliver ``messages`` to a RequestServer (a new one by default), wait for every reply."""

    async def run() -> None:
        with ThreadPoolExecutor(2) as pool:
            nonlocal server
            if server is None:
                server = RequestServer(backend, pool)
            server.pool = pool
            for data in messages:
                server.deliver(conn, CALLER, MIRAGE, data)  # type: ignore[arg-type]
            await settled(server)

    asyncio.run(run())


def test_call_is_answered_with_the_tag_as_given() -> None:
    conn, backend = FakeConnection(), ServerBackend()
    serve([gen_call(call("info", PNG)), gen_call(call("formats"), tag=REF)], conn, backend)
    assert len(conn.sent) == 2
    to, (tag, reply) = conn.sent[0]
    assert (to, tag) == (CALLER, TAG)
    assert reply[0] == Atom("ok") and reply[3][Atom("width")] == 20
    assert conn.sent[1][1][0] == REF


def test_images_belong_to_the_caller_and_go_with_it() -> None:
    conn, backend = FakeConnection(), ServerBackend()
    serve([gen_call(call("from_bytes", PNG)), gen_call(call("from_bytes", PNG))], conn, backend)
    assert backend.service.live_handles() == 2 and set(conn.owners) == {CALLER}
    handle = conn.sent[0][1][1][2][0]
    serve([etf.encode((GEN_CAST, (Atom("release"), [handle, 999, Atom("x")])))], conn, backend)
    assert backend.service.live_handles() == 1
    serve([etf.encode((GEN_CAST, (Atom("release_owner"), OTHER)))], conn, backend)
    assert backend.service.live_handles() == 1
    serve([etf.encode((GEN_CAST, (Atom("release_owner"), CALLER)))], conn, backend)
    assert backend.service.live_handles() == 0


def test_a_connection_remembers_only_the_pids_that_hold_images() -> None:
    # Many short-lived callers: none stays in the connection's owners once its
    # images are released, and calls that hold nothing never enter it.
    conn, backend = FakeConnection(), ServerBackend()
    with ThreadPoolExecutor(1) as unused:  # serve() gives it a pool of its own
        server = RequestServer(backend, unused)
    callers = [Pid(Atom("erl@host"), 100 + n, 0, 3) for n in range(5)]
    made = [gen_call(call("from_bytes", PNG), caller=c) for c in callers]
    serve([*made, gen_call(call("info", PNG), caller=OTHER)], conn, backend, server)
    assert set(conn.owners) == set(callers) and backend.service.live_handles() == 5
    handles = {to: reply[2][0] for to, (_tag, reply) in conn.sent if reply[2] is not None}
    serve(
        [etf.encode((GEN_CAST, (Atom("release"), [handles[c]]))) for c in callers[:4]],
        conn,
        backend,
        server,
    )
    assert set(conn.owners) == {callers[4]} and backend.service.live_handles() == 1
    serve([etf.encode((GEN_CAST, (Atom("release_owner"), callers[4])))], conn, backend, server)
    assert conn.owners == {} and backend.service.live_handles() == 0


def test_connection_lost_releases_its_owners_images() -> None:
    conn, backend = FakeConnection(), ServerBackend()
    serve([gen_call(call("from_bytes", PNG))], conn, backend)
    assert backend.service.live_handles() == 1
    with ThreadPoolExecutor(1) as pool:
        RequestServer(backend, pool).connection_lost(conn)  # type: ignore[arg-type]
    assert backend.service.live_handles() == 0 and not conn.owners


def test_image_made_after_the_connection_closed_is_released() -> None:
    started, finish = threading.Event(), threading.Event()

    class HeldBackend(ServerBackend):
        def call(self, *args: Any) -> object:
            started.set()
            finish.wait(10)
            return super().call(*args)

    conn, backend = FakeConnection(), HeldBackend()

    async def run() -> None:
        with ThreadPoolExecutor(1) as pool:
            server = RequestServer(backend, pool)
            server.deliver(conn, CALLER, MIRAGE, gen_call(call("from_bytes", PNG)))  # type: ignore[arg-type]
            await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
            conn.closed = True
            server.connection_lost(conn)  # type: ignore[arg-type]
            finish.set()
            await settled(server)

    asyncio.run(run())
    assert backend.service.live_handles() == 0


@pytest.mark.parametrize(
    "request_",
    [
        call("no_such_op"),
        (Atom("call"), Atom("formats"), None, [1]),
        (Atom("call"), Atom("formats"), 42, {}),
        (Atom("call"), Atom("formats"), (Atom("handle"), True), {}),
        (Atom("call"), b"formats", None, {}),
        (Atom("call"), None, None, {}),
        (Atom("call"), Atom("formats")),
        [Atom("call"), Atom("formats"), None, {}],
        Atom("hello"),
    ],
)
def test_bad_requests_get_an_error_reply(request_: object) -> None:
    conn = FakeConnection()
    serve([gen_call(request_)], conn, ServerBackend())
    assert conn.sent == [(CALLER, (TAG, INTERNAL_ERROR))]


def test_unknown_handle_is_released() -> None:
    conn = FakeConnection()
    serve([gen_call(call("to_bytes", (Atom("handle"), 12345)))], conn, ServerBackend())
    assert conn.sent == [(CALLER, (TAG, Atom("released")))]


def test_undecodable_request_still_gets_an_error_reply() -> None:
    data = gen_call(0)
    assert data.endswith(b"a\x00")
    closure = data[:-2] + b"p" + b"\x00" * 40  # NEW_FUN_EXT: never decoded here
    assert caller_of(closure) == (CALLER, TAG)
    conn = FakeConnection()
    serve([closure], conn, ServerBackend())
    assert conn.sent == [(CALLER, (TAG, INTERNAL_ERROR))]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x83",
        etf.encode((Atom("$gen_cast"), 1, 2)),
        etf.encode((GEN_CALL, Atom("not_from"), 1))[:-2] + b"p",
        etf.encode((GEN_CALL, (1, 2), 1))[:-2] + b"p",
        etf.encode([GEN_CALL, (CALLER, TAG), 1])[:-2] + b"p",
    ],
)
def test_caller_of_unreadable_messages_is_none(data: bytes) -> None:
    assert caller_of(data) is None


def test_other_messages_are_dropped_without_reply() -> None:
    conn, backend = FakeConnection(), ServerBackend()
    messages = [
        etf.encode(Atom("hello")),
        etf.encode((GEN_CAST, Atom("nonsense"))),
        etf.encode((GEN_CALL, Atom("no_from"), call("formats"))),
        b"\x83\xff",
    ]
    serve(messages, conn, backend)
    assert conn.sent == []


def test_parse_call() -> None:
    request = call("thumbnail", (Atom("handle"), 7), width=5)
    assert parse_call(request) == (Atom("thumbnail"), (Atom("handle"), 7), request[3])
    assert parse_call((Atom("call"), 1, 2, 3)) == (1, 2, 3)  # the server checks the parts
    assert parse_call((Atom("call"), Atom("x"), None, {}, 5)) is None
    assert parse_call((Atom("cast"), Atom("x"), None, {})) is None


def test_net_kernel_answers_ping_only() -> None:
    conn = FakeConnection()

    async def run() -> None:
        with ThreadPoolExecutor(1) as pool:
            server = RequestServer(ServerBackend(), pool)
            ping = gen_call((Atom("is_auth"), Atom("erl@host")), tag=REF)
            server.deliver(conn, CALLER, NET_KERNEL, ping)  # type: ignore[arg-type]
            server.deliver(conn, CALLER, NET_KERNEL, gen_call((Atom("spawn"), 1)))  # type: ignore[arg-type]
            server.deliver(conn, CALLER, NET_KERNEL, gen_call(call("formats")))  # type: ignore[arg-type]

    asyncio.run(run())
    assert conn.sent == [(CALLER, (REF, Atom("yes")))]


def test_calls_over_the_queue_limit_are_answered_overloaded_at_once() -> None:
    release = threading.Event()

    class HeldBackend(ServerBackend):
        def call(self, *args: Any) -> object:
            release.wait(10)
            return super().call(*args)

    conn = FakeConnection()
    first, second, third = (gen_call(call("formats"), tag=n) for n in (1, 2, 3))

    async def run() -> None:
        with ThreadPoolExecutor(1) as pool:
            server = RequestServer(HeldBackend(), pool, max_queue=1)
            server.deliver(conn, CALLER, MIRAGE, first)  # type: ignore[arg-type]
            server.deliver(conn, CALLER, MIRAGE, second)  # type: ignore[arg-type]
            assert [tag for _, (tag, _) in conn.sent] == [2]  # answered before the first
            release.set()
            await settled(server)
            server.deliver(conn, CALLER, MIRAGE, third)  # type: ignore[arg-type]
            await settled(server)

    asyncio.run(run())
    overloaded = (Atom("error"), Atom("overloaded"))
    assert [(tag, reply == overloaded) for _, (tag, reply) in conn.sent] == [
        (2, True),
        (1, False),
        (3, False),
    ]
