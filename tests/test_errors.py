"""mirage.errors: the closed set of reasons and the mapping of any exception onto it."""

from __future__ import annotations

import importlib
import re
import struct
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image as PILImage

from mirage import codec, errors, image
from mirage.errors import (
    DecodeFailed,
    EncodeFailed,
    InternalError,
    InvalidDimensions,
    MirageError,
    TooComplex,
    TooManyPixels,
    TruncatedImage,
    UnsupportedFeature,
    UnsupportedImageFormat,
    classify,
    translate,
)
from mirage.etf import Atom
from mirage.formats import FORMATS
from mirage.service import Reply, Service
from tests.conftest import REPO_ROOT, gradient, logged_text
from tests.conftest import encode as pil_encode

# The contract shared with the NIF (atoms by index), the port, the node and Elixir.
EXPECTED_REASONS = (
    "unsupported_image_format",
    "truncated_image",
    "too_many_pixels",
    "too_complex",
    "invalid_dimensions",
    "decode_failed",
    "encode_failed",
    "unsupported_feature",
    "internal_error",
)

# Each error with its reason and the built-in a Python caller would catch it as.
SUBCLASSES: list[tuple[type[MirageError], str, type[Exception]]] = [
    (UnsupportedImageFormat, "unsupported_image_format", ValueError),
    (TruncatedImage, "truncated_image", OSError),
    (TooManyPixels, "too_many_pixels", ValueError),
    (TooComplex, "too_complex", ValueError),
    (InvalidDimensions, "invalid_dimensions", ValueError),
    (DecodeFailed, "decode_failed", OSError),
    (EncodeFailed, "encode_failed", OSError),
    (UnsupportedFeature, "unsupported_feature", ValueError),
    (InternalError, "internal_error", RuntimeError),
]


class CustomFailure(Exception):
    """Something no mapping knows about: must count as a bug (internal_error)."""


def test_reasons_are_exactly_the_closed_set_in_order() -> None:
    # Order matters: the NIF reports a reason as an index into this tuple.
    assert errors.REASONS == EXPECTED_REASONS
    assert len(set(errors.REASONS)) == len(errors.REASONS)


def test_every_error_class_is_listed_once() -> None:
    assert set(errors.ERRORS) == {cls for cls, _, _ in SUBCLASSES}
    assert len(errors.ERRORS) == len(set(errors.ERRORS))
    assert tuple(cls.reason for cls in errors.ERRORS) == errors.REASONS


@pytest.mark.parametrize(("cls", "reason", "builtin"), SUBCLASSES, ids=lambda v: str(v))
def test_subclass_reason_and_builtin(
    cls: type[MirageError], reason: str, builtin: type[Exception]
) -> None:
    err = cls("details")
    assert err.reason == reason
    assert isinstance(err, MirageError)
    assert isinstance(err, builtin)
    # Callers can catch it either way, and the message survives.
    with pytest.raises(builtin, match="details"):
        raise err


def test_reasons_match_elixir_error_type() -> None:
    # lib/mirage/error.ex declares the same set as an Elixir type; the two must agree.
    source = REPO_ROOT / "lib" / "mirage" / "error.ex"
    if not source.is_file():
        pytest.skip("lib/mirage/error.ex not present (Python-only install)")
    match = re.search(r"@type core_reason ::(.*?)\n\n", source.read_text(), re.S)
    assert match, "no @type core_reason in error.ex"
    atoms = re.findall(r":(\w+)", match.group(1))
    assert tuple(atoms) == errors.REASONS


# --- classify ----------------------------------------------------------------------------

BOTH_PHASES = ("decode", "encode")


@pytest.mark.parametrize("phase", BOTH_PHASES)
@pytest.mark.parametrize(
    "exc",
    [
        PILImage.DecompressionBombError("Image size (10 pixels) exceeds limit"),
        MemoryError(),
    ],
    ids=type,
)
def test_pixel_floods_and_memory_are_too_many_pixels(exc: BaseException, phase: str) -> None:
    assert isinstance(classify(exc, phase), TooManyPixels)  # type: ignore[arg-type]


@pytest.mark.parametrize("phase", BOTH_PHASES)
def test_unidentified_is_unsupported_format(phase: str) -> None:
    # UnidentifiedImageError is an OSError: it must not fall into decode/encode_failed.
    err = classify(PILImage.UnidentifiedImageError("cannot identify image file"), phase)  # type: ignore[arg-type]
    assert isinstance(err, UnsupportedImageFormat)


@pytest.mark.parametrize(
    "exc",
    [
        EOFError(),
        struct.error("unpack requires a buffer of 4 bytes"),
        OSError("image file is truncated (8 bytes not processed)"),
        OSError("Truncated File Read"),
    ],
    ids=repr,
)
def test_truncation_while_decoding(exc: BaseException) -> None:
    assert isinstance(classify(exc, "decode"), TruncatedImage)


@pytest.mark.parametrize(
    "exc",
    [EOFError(), struct.error("short"), OSError("image file is truncated")],
    ids=repr,
)
def test_truncation_messages_mean_nothing_while_encoding(exc: BaseException) -> None:
    # Output cannot be "truncated": an encoder failing this way failed to encode.
    assert isinstance(classify(exc, "encode"), EncodeFailed)


DATA_ERRORS = [
    OSError("decoder error -2"),
    SyntaxError("broken PNG file"),
    ValueError("not enough image data"),
    TypeError("bad tag type"),
    KeyError("missing tag"),
    IndexError("list index out of range"),
    ZeroDivisionError("division by zero"),
    RuntimeError("encoder error -2"),  # Pillow's C codecs report bad data this way
]


@pytest.mark.parametrize("exc", DATA_ERRORS, ids=repr)
def test_data_errors_while_decoding_are_decode_failed(exc: BaseException) -> None:
    assert isinstance(classify(exc, "decode"), DecodeFailed)


@pytest.mark.parametrize("exc", DATA_ERRORS, ids=repr)
def test_data_errors_while_encoding_are_encode_failed(exc: BaseException) -> None:
    assert isinstance(classify(exc, "encode"), EncodeFailed)


@pytest.mark.parametrize("phase", BOTH_PHASES)
@pytest.mark.parametrize(
    "exc",
    [CustomFailure("surprise"), AttributeError("no attribute"), NameError("x"), AssertionError()],
    ids=repr,
)
def test_unexpected_exceptions_are_internal_errors(exc: BaseException, phase: str) -> None:
    assert isinstance(classify(exc, phase), InternalError)  # type: ignore[arg-type]


def test_classify_returns_mirage_errors_unchanged() -> None:
    original = TooManyPixels("budget")
    assert classify(original, "encode") is original


def test_classified_message_names_the_original_exception() -> None:
    # The message is all the BEAM side logs; it must say what Pillow actually raised.
    err = classify(SyntaxError("broken PNG file"), "decode")
    assert "SyntaxError" in str(err)
    assert "broken PNG file" in str(err)


# --- translate ---------------------------------------------------------------------------


def test_translate_reraises_as_mapped_error_with_cause() -> None:
    cause = ValueError("bad data")
    with pytest.raises(DecodeFailed) as info:
        with translate("decode"):
            raise cause
    assert info.value.__cause__ is cause


def test_translate_uses_its_phase() -> None:
    with pytest.raises(EncodeFailed):
        with translate("encode"):
            raise OSError("cannot write mode P as JPEG")


def test_translate_passes_mirage_errors_through_unchanged() -> None:
    original = InvalidDimensions("0x0")
    with pytest.raises(InvalidDimensions) as info:
        with translate("decode"):
            raise original
    assert info.value is original
    assert info.value.__cause__ is None


def test_translate_leaves_successful_blocks_alone() -> None:
    with translate("decode"):
        value = 1 + 1
    assert value == 2


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(1)], ids=repr)
def test_translate_does_not_swallow_base_exceptions(exc: BaseException) -> None:
    # Interrupts and exits must keep their meaning, not become an image error.
    with pytest.raises(type(exc)):
        with translate("decode"):
            raise exc


# --- bugs are not bad data -----------------------------------------------------------------
#
# A bug injected into Mirage's own code, on each path where Pillow's failures become data
# reasons, must reach a transport as internal_error with its traceback logged, and a
# Python caller as the original exception.


def _injected(kind: type[Exception]) -> Callable[..., Any]:
    def bug(*_: object, **__: object) -> Any:
        raise kind("injected bug")

    bug.__code__ = _mirage_code(bug.__code__)
    return bug


def _mirage_code(code: Any) -> Any:
    # The bug must be raised from a frame in the mirage package, as a real one would.
    return code.replace(co_filename=str(REPO_ROOT / "mirage" / "injected.py"))


# (what to patch, exception, operation, source kind, Python-level call)
BUGS = [
    ("mirage.metadata.source_exif", KeyError, "info", "bytes"),
    ("mirage.codec.decode_frames", TypeError, "to_bytes", "held"),
    ("mirage.pngfast.decode", TypeError, "thumbnail", "bytes"),
    ("mirage.pngfast.encode", KeyError, "thumbnail", "bytes"),
    ("mirage.codec.Frames.map", KeyError, "thumbnail", "bytes"),
    ("mirage.buffers.Encoded.__init__", TypeError, "to_bytes", "held"),
    ("mirage.buffers.ViewFile.readinto", TypeError, "info", "view"),
    ("mirage.metadata.exif_for", LookupError, "to_bytes", "held"),
]


def _patch(monkeypatch: pytest.MonkeyPatch, target: str, kind: type[Exception]) -> None:
    module_name, _, attribute = target.rpartition(".")
    owner: Any
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError:
        parent, _, cls = module_name.rpartition(".")
        owner = getattr(importlib.import_module(parent), cls)
    monkeypatch.setattr(owner, attribute, _injected(kind))


def _request(op: str, kind: str, png: bytes, service: Service) -> tuple[Any, dict[str, Any]]:
    limits = {"max_pixels": 50_000_000, "allowed_formats": [Atom(f) for f in FORMATS]}
    if kind == "held":
        held = service.call("from_bytes", png, limits).image
        assert held is not None
        return held.handle, limits
    source = memoryview(bytearray(png)) if kind == "view" else png
    return source, {**limits, "width": 10, "height": 10}


@pytest.mark.parametrize(("target", "kind", "op", "source"), BUGS, ids=[b[0] for b in BUGS])
def test_injected_bug_is_internal_error_via_service(
    target: str,
    kind: type[Exception],
    op: str,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    sink_lines: list[tuple[int, str]],
) -> None:
    png = pil_encode(gradient((40, 30)), "PNG")
    service = Service()
    request, arguments = _request(op, source, png, service)
    _patch(monkeypatch, target, kind)
    reply = service.call(op, request, arguments)
    assert reply == Reply.error("internal_error")
    text = logged_text(sink_lines)
    assert "Traceback" in text
    assert f"{kind.__name__}: " in text and "injected bug" in text
    assert any(level == 3 and "injected bug" in line for level, line in sink_lines)


@pytest.mark.parametrize(("target", "kind", "op", "source"), BUGS, ids=[b[0] for b in BUGS])
def test_injected_bug_reaches_python_callers_unchanged(
    target: str, kind: type[Exception], op: str, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = pil_encode(gradient((40, 30)), "PNG")
    held = image.from_bytes(png)
    _patch(monkeypatch, target, kind)
    calls: dict[str, Callable[[], object]] = {
        "info": lambda: image.info(memoryview(png) if source == "view" else png),
        "thumbnail": lambda: image.thumbnail(png, 10, 10),
        "to_bytes": lambda: image.to_bytes(held, strip=False, format="jpg"),
    }
    with pytest.raises(Exception) as raised:
        calls[op]()
    assert not isinstance(raised.value, MirageError)  # not passed off as bad data
    # The bug itself, or (where Pillow wraps what the file it reads raises) its cause.
    bug = raised.value if type(raised.value) is kind else raised.value.__cause__
    assert type(bug) is kind and "injected bug" in str(bug)


def test_the_same_failure_from_pillow_is_bad_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # The rule is about who raised: the same exception raised by (a stand-in for)
    # Pillow's resize is a data error.
    def pillow_fails(*_: object, **__: object) -> None:
        raise KeyError("bad tile")

    monkeypatch.setattr(PILImage.Image, "resize", pillow_fails)
    png = pil_encode(gradient((40, 30)), "PNG")
    with pytest.raises(DecodeFailed):
        image.thumbnail(png, 10, 10)
    reply = Service().call(
        "thumbnail",
        png,
        {"max_pixels": 10**6, "allowed_formats": [Atom("png")], "width": 10, "height": 10},
    )
    assert reply == Reply.error("decode_failed")


def test_raised_by_mirage_looks_at_the_innermost_frame() -> None:
    assert not errors.raised_by_mirage(ValueError("never raised"))
    try:
        _injected(TypeError)()
    except TypeError as exc:
        assert errors.raised_by_mirage(exc)
    try:
        raise OSError("raised here, in the tests")
    except OSError as exc:
        assert not errors.raised_by_mirage(exc)


def test_reason_of_logs_only_internal_errors(sink_lines: list[tuple[int, str]]) -> None:
    assert errors.reason_of(TruncatedImage("cut")) == "truncated_image"
    assert errors.reason_of(MemoryError()) == "too_many_pixels"
    assert sink_lines == []
    assert errors.reason_of(InternalError("odd")) == "internal_error"
    assert errors.reason_of(AttributeError("bug"), "crop") == "internal_error"
    text = logged_text(sink_lines)
    assert "internal error in crop" in text and "AttributeError: bug" in text


@pytest.mark.parametrize(
    ("module", "table", "op"),
    [
        (image, "FROM_PILLOW", "info"),  # looked up inside translate("decode")
        (codec, "PILLOW_NAME", "to_bytes"),  # looked up inside encode's try
    ],
)
def test_a_broken_table_of_ours_is_internal_error(
    module: Any,
    table: str,
    op: str,
    monkeypatch: pytest.MonkeyPatch,
    sink_lines: list[tuple[int, str]],
) -> None:
    # A real bug, raised by Mirage's own code (a KeyError from a lookup), not a stand-in.
    png = pil_encode(gradient((40, 30)), "PNG")
    service = Service()
    limits = {"max_pixels": 10**6, "allowed_formats": [Atom("png")]}
    held = service.call("from_bytes", png, limits).image
    assert held is not None
    flipped = service.call("flip", held.handle, {**limits, "direction": Atom("vertical")}).image
    assert flipped is not None  # pixels held: to_bytes encodes without opening the file
    py_flipped = image.flip(image.from_bytes(png), "vertical")
    monkeypatch.setattr(module, table, {})
    source: Any = png if op == "info" else flipped.handle
    assert service.call(op, source, limits) == Reply.error("internal_error")
    assert "KeyError" in logged_text(sink_lines)
    with pytest.raises(KeyError):
        if op == "info":
            image.info(png)
        else:
            image.to_bytes(py_flipped)
