"""mirage.errors: the closed set of reasons and the mapping of any exception onto it."""

from __future__ import annotations

import re
import struct

import pytest
from PIL import Image as PILImage

from mirage import errors
from mirage.errors import (
    DecodeFailed,
    EncodeFailed,
    InternalError,
    InvalidDimensions,
    MirageError,
    TooManyPixels,
    TruncatedImage,
    UnsupportedImageFormat,
    classify,
    translate,
)
from tests.conftest import REPO_ROOT

# The contract shared with the NIF (atoms by index), the port, the node and Elixir.
EXPECTED_REASONS = (
    "unsupported_image_format",
    "truncated_image",
    "too_many_pixels",
    "invalid_dimensions",
    "decode_failed",
    "encode_failed",
    "internal_error",
)

# Each error with its reason and the built-in a Python caller would catch it as.
SUBCLASSES: list[tuple[type[MirageError], str, type[Exception]]] = [
    (UnsupportedImageFormat, "unsupported_image_format", ValueError),
    (TruncatedImage, "truncated_image", OSError),
    (TooManyPixels, "too_many_pixels", ValueError),
    (InvalidDimensions, "invalid_dimensions", ValueError),
    (DecodeFailed, "decode_failed", OSError),
    (EncodeFailed, "encode_failed", OSError),
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
