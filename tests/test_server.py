"""mirage.server: request terms in, the NIF's reply terms out, for the Port and Node."""

from __future__ import annotations

from typing import Any

import pytest

from mirage import buffers, etf, server
from mirage.etf import Atom, Pid
from mirage.formats import FORMATS
from mirage.service import Service
from tests.conftest import encode, gradient, logged_text, open_bytes

OK, ERROR = Atom("ok"), Atom("error")
LIMITS = {Atom("max_pixels"): 50_000_000, Atom("allowed_formats"): [Atom(f) for f in FORMATS]}
OWNER = Pid(Atom("nonode@nohost"), 101, 0, 0)


def args(**extra: Any) -> dict[Atom, Any]:
    return {**LIMITS, **{Atom(k): v for k, v in extra.items()}}


def wire(term: object) -> object:
    """The term as the other side reads it: through the External Term Format."""
    return etf.decode(etf.encode(term))


@pytest.fixture
def png() -> bytes:
    return encode(gradient((60, 40)), "PNG")


@pytest.fixture
def service() -> Service:
    return Service()


def test_info_reply(service: Service, png: bytes) -> None:
    reply = server.handle(service, Atom("info"), png, args(), OWNER)
    assert isinstance(reply, tuple) and reply[:3] == (OK, None, None)
    term = reply[3]
    assert isinstance(term, dict) and term[Atom("format")] == Atom("png")
    decoded = wire(reply)  # what Elixir reads: the mode string as a binary
    assert isinstance(decoded, tuple) and decoded[3][Atom("mode")] == b"RGB"


def test_thumbnail_reply_has_bytes_and_a_handle(service: Service, png: bytes) -> None:
    reply = server.handle(service, Atom("thumbnail"), png, args(width=30, height=20), OWNER)
    assert isinstance(reply, tuple) and len(reply) == 4
    ok, data, image, term = reply
    assert (ok, term) == (OK, None)
    assert isinstance(data, bytes) and open_bytes(data).size == (30, 20)
    handle, fmt, width, height = image
    assert isinstance(handle, int) and handle > 0
    assert (type(fmt), fmt, width, height) == (Atom, "png", 30, 20)
    assert wire(reply) == reply
    assert service.live_handles() == 1


def test_handle_sources_and_release(service: Service, png: bytes) -> None:
    made = server.handle(service, Atom("from_bytes"), png, args(), OWNER)
    assert isinstance(made, tuple)
    handle = made[2][0]
    source = (Atom("handle"), handle)
    cropped = server.handle(service, Atom("crop"), source, args(x=0, y=0, width=6, height=4), OWNER)
    assert isinstance(cropped, tuple) and cropped[0] == OK and cropped[2][2:] == (6, 4)
    encoded = server.handle(service, Atom("to_bytes"), source, args(format=Atom("webp")), OWNER)
    assert isinstance(encoded, tuple) and open_bytes(encoded[1]).format == "WEBP"
    assert service.release_owner(OWNER) == 2
    assert server.handle(service, Atom("to_bytes"), source, args(), OWNER) == Atom("released")


def test_formats_needs_no_source(service: Service) -> None:
    reply = server.handle(service, Atom("formats"), None, args(), OWNER)
    assert isinstance(reply, tuple) and reply[0] == OK
    assert Atom("png") in reply[3][Atom("read")]


def test_bad_data_is_an_error_reason(service: Service) -> None:
    reply = server.handle(service, Atom("info"), b"not an image", args(), OWNER)
    assert reply == (ERROR, Atom("unsupported_image_format"))
    assert wire(reply) == reply


def test_caps_answer_overloaded(png: bytes) -> None:
    service = Service(max_handles=1)
    assert server.handle(service, Atom("from_bytes"), png, args(), OWNER)[0] == OK  # type: ignore[index]
    reply = server.handle(service, Atom("from_bytes"), png, args(), OWNER)
    assert reply == (ERROR, Atom("overloaded"))


@pytest.mark.parametrize(
    ("op", "source", "arguments"),
    [
        ("info", (Atom("handle"), "1"), LIMITS),  # a handle is an integer
        ("info", (Atom("handle"), True), LIMITS),
        ("info", (Atom("other"), 1), LIMITS),
        ("info", [1, 2], LIMITS),
        (b"info", b"x", LIMITS),  # an operation is an atom
        ("info", b"x", [1]),  # arguments are a map
    ],
)
def test_malformed_requests_are_internal_errors(
    service: Service, op: Any, source: Any, arguments: Any, sink_lines: list[tuple[int, str]]
) -> None:
    reply = server.handle(service, op, source, arguments, OWNER)
    assert reply == (ERROR, Atom("internal_error"))
    assert "Traceback" in logged_text(sink_lines)


def test_output_keep_puts_the_encoded_in_the_reply(service: Service, png: bytes) -> None:
    reply = server.handle(
        service, Atom("thumbnail"), png, args(width=30, height=20), OWNER, output=buffers.keep
    )
    assert isinstance(reply, tuple)
    encoded = reply[1]
    assert isinstance(encoded, buffers.Encoded)
    with encoded:
        assert open_bytes(encoded.to_bytes()).size == (30, 20)


def test_a_failing_output_releases_the_image_and_closes_the_bytes(
    service: Service, png: bytes, sink_lines: list[tuple[int, str]]
) -> None:
    seen: list[buffers.Encoded] = []

    def broken(encoded: buffers.Encoded) -> object:
        seen.append(encoded)
        raise OSError("the pipe closed")

    reply = server.handle(
        service, Atom("thumbnail"), png, args(width=30, height=20), OWNER, output=broken
    )
    assert reply == (ERROR, Atom("internal_error"))
    assert service.live_handles() == 0
    with pytest.raises(ValueError):
        seen[0].to_bytes()  # closed
