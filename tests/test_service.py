"""mirage.service: the one request path (handles, owners, caps, the released race,
every exception mapped to a reason)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mirage import buffers, image, ops
from mirage.etf import Atom
from mirage.formats import FORMATS
from mirage.service import RELEASED, Held, Reply, Service
from tests.conftest import encode, gradient, logged_text, open_bytes, quadrants

ALL = [Atom(f) for f in FORMATS]


def args(**extra: Any) -> dict[str, Any]:
    return {"max_pixels": 50_000_000, "allowed_formats": ALL, **extra}


def read(reply: Reply) -> bytes:
    assert reply.kind == "ok" and reply.data is not None
    return buffers.read_bytes(reply.data)


@pytest.fixture
def png() -> bytes:
    return encode(quadrants((80, 60)), "PNG")


@pytest.fixture
def service() -> Iterator[Service]:
    yield Service()


def test_info_answers_a_term_and_holds_nothing(service: Service, png: bytes) -> None:
    reply = service.call("info", png, args())
    assert reply.kind == "ok" and reply.data is None and reply.image is None
    assert isinstance(reply.term, dict) and reply.term[Atom("width")] == 80
    assert service.live_handles() == 0


def test_thumbnail_answers_bytes_and_a_held_image(service: Service, png: bytes) -> None:
    reply = service.call("thumbnail", png, args(width=40, height=30))
    assert isinstance(reply.image, Held)
    assert (reply.image.format, reply.image.width, reply.image.height) == ("png", 40, 30)
    assert open_bytes(read(reply)).size == (40, 30)
    assert service.live_handles() == 1


def test_a_handle_is_a_source(service: Service, png: bytes) -> None:
    held = service.call("from_bytes", png, args()).image
    assert held is not None
    cropped = service.call("crop", held.handle, args(x=0, y=0, width=40, height=30)).image
    assert cropped is not None and (cropped.width, cropped.height) == (40, 30)
    out = read(service.call("to_bytes", cropped.handle, args(format=Atom("jpg"))))
    assert open_bytes(out).format == "JPEG"
    # The same work through the Python API gives the same bytes.
    expected = image.to_bytes(image.crop(image.from_bytes(png), 0, 0, 40, 30), format="jpg")
    assert out == expected


def test_released_or_unknown_handles_answer_released(service: Service, png: bytes) -> None:
    held = service.call("from_bytes", png, args()).image
    assert held is not None
    service.release(held.handle)
    service.release(held.handle)  # idempotent
    assert service.call("to_bytes", held.handle, args()) is RELEASED
    assert service.call("to_bytes", 10_000, args()) is RELEASED
    assert service.live_handles() == 0


def test_release_owner(service: Service, png: bytes) -> None:
    a = [service.call("from_bytes", png, args(), owner="a").image for _ in range(3)]
    b = service.call("from_bytes", png, args(), owner="b").image
    assert b is not None and all(h is not None for h in a)
    assert service.release_owner("a") == 3
    assert service.live_handles() == 1
    for held in a:
        assert held is not None
        assert service.call("to_bytes", held.handle, args()) is RELEASED
    assert service.call("to_bytes", b.handle, args()).kind == "ok"


def test_handle_cap_answers_overloaded(png: bytes) -> None:
    service = Service(max_handles=2)
    for _ in range(2):
        assert service.call("from_bytes", png, args()).kind == "ok"
    assert service.call("from_bytes", png, args()) == Reply.error("overloaded")
    # An operation that holds nothing still works when full.
    assert service.call("info", png, args()).kind == "ok"
    assert service.live_handles() == 2


def test_overloaded_closes_the_encoded_output(png: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[buffers.Encoded] = []
    close = buffers.Encoded.close

    def spy(self: buffers.Encoded) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(buffers.Encoded, "close", spy)
    # Not full yet, but the 10x10 result (400 bytes of pixels) does not fit.
    service = Service(max_bytes=100)
    reply = service.call("thumbnail", png, args(width=10, height=10))
    assert reply == Reply.error("overloaded")
    assert len(closed) == 1  # the encoded bytes nobody will read
    assert service.live_handles() == 0


def test_byte_cap_counts_pixel_memory(png: bytes) -> None:
    # An 80x60 RGB image is held as 4 bytes a pixel; its source PNG as its bytes.
    decoded = 80 * 60 * 4
    service = Service(max_bytes=decoded + len(png))
    held = service.call("from_bytes", png, args()).image  # holds the encoded bytes
    assert held is not None and service.held_bytes() == len(png)
    turned = service.call("flip", held.handle, args(direction=Atom("vertical")))
    assert turned.kind == "ok" and service.held_bytes() == decoded + len(png)
    assert service.call("flip", held.handle, args(direction=Atom("vertical"))) == Reply.error(
        "overloaded"
    )
    assert turned.image is not None
    service.release(turned.image.handle)
    assert service.held_bytes() == len(png)


# --- exceptions to reasons ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "unsupported_image_format"),
        (b"not an image", "unsupported_image_format"),
        (b"\x89PNG\r\n\x1a\n", "truncated_image"),
    ],
)
def test_bad_data_answers_its_reason(service: Service, data: bytes, reason: str) -> None:
    assert service.call("info", data, args()) == Reply.error(reason)


def test_budget_answers_too_many_pixels(service: Service, png: bytes) -> None:
    reply = service.call("from_bytes", png, {**args(), "max_pixels": 100})
    assert reply == Reply.error("too_many_pixels")


@pytest.mark.parametrize(
    ("op", "source"),
    [
        ("no_such_operation", b"x"),
        ("crop", b"bytes where a held image is needed"),
        ("info", True),  # a bool is not a handle
        ("info", 3.5),
    ],
)
def test_misuse_is_an_internal_error_with_its_traceback(
    service: Service, op: str, source: Any, sink_lines: list[tuple[int, str]]
) -> None:
    reply = service.call(op, source, args(x=0, y=0, width=1, height=1))
    assert reply == Reply.error("internal_error")
    text = logged_text(sink_lines)
    assert "Traceback" in text and f"internal error in {op}" in text
    assert any(level == 3 for level, _ in sink_lines)  # logged as an error


def test_memory_error_is_too_many_pixels(
    service: Service, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory(*_: object, **__: object) -> None:
        raise MemoryError

    monkeypatch.setattr(image, "_decode", no_memory)
    reply = service.call("thumbnail", png, args(width=10, height=10))
    assert reply == Reply.error("too_many_pixels")


def test_call_never_raises_on_a_bad_args_map(service: Service, png: bytes) -> None:
    reply = service.call("info", png, {})  # no limits: a caller's bug
    assert reply == Reply.error("internal_error")


# --- the released race ------------------------------------------------------------------------


def test_release_racing_calls_gives_ok_or_released(png: bytes) -> None:
    service = Service()
    for _ in range(20):
        held = service.call("from_bytes", png, args()).image
        assert held is not None
        replies: list[Reply] = []
        start = threading.Barrier(5)

        def use(
            handle: int = held.handle,
            start: threading.Barrier = start,
            replies: list[Reply] = replies,
        ) -> None:
            start.wait()
            for _ in range(5):
                reply = service.call("flip", handle, args(direction=Atom("horizontal")))
                replies.append(reply)
                if reply.image is not None:
                    service.release(reply.image.handle)

        threads = [threading.Thread(target=use) for _ in range(4)]
        for thread in threads:
            thread.start()
        start.wait()
        service.release(held.handle)
        for thread in threads:
            thread.join()
        assert {r.kind for r in replies} <= {"ok", "released"}
        assert service.live_handles() == 0


def test_concurrent_calls_get_distinct_handles(png: bytes) -> None:
    service = Service()
    data = encode(gradient((64, 48)), "JPEG")
    handles: list[int] = []

    def work() -> None:
        for _ in range(10):
            reply = service.call("thumbnail", data, args(width=16, height=12))
            assert reply.image is not None
            read(reply)
            handles.append(reply.image.handle)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(handles)) == 40 == service.live_handles()


def test_a_full_service_refuses_before_doing_the_work(
    png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(max_handles=1)
    assert service.call("from_bytes", png, args()).kind == "ok"
    ran: list[str] = []
    real = image.thumbnail

    def spy(*a: Any, **k: Any) -> Any:
        ran.append("thumbnail")
        return real(*a, **k)

    monkeypatch.setattr(image, "thumbnail", spy)
    assert service.call("thumbnail", png, args(width=8, height=8)) == Reply.error("overloaded")
    assert ran == []
    # info holds nothing, so it still runs on a full service.
    assert service.call("info", png, args()).kind == "ok"


def test_every_operation_that_holds_is_listed(png: bytes) -> None:
    service = Service()
    held = service.call("from_bytes", png, args()).image
    assert held is not None
    every = args(width=8, height=8, x=0, y=0, degrees=90, direction=Atom("vertical"))
    for op in ops.OPS:
        source = png if op in ("from_bytes", "info", "thumbnail") else held.handle
        reply = service.call(op, None if op == "formats" else source, every)
        assert reply.kind == "ok", op
        assert (reply.image is not None) == (op in ops.HOLDS_RESULT), op
