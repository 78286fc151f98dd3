"""mirage.ops: the operation table every transport dispatches through.

Arguments arrive as a transport decodes them from Elixir: a dict with ``max_pixels``
and ``allowed_formats`` always present, atoms as :class:`mirage.etf.Atom` (a ``str``
subclass), tuples for Elixir tuples and lists for lists.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pytest
from PIL import Image as PILImage

etf = pytest.importorskip(
    "mirage.etf", reason="mirage.etf is not importable yet (the ETF codec is unfinished)"
)
ops = pytest.importorskip("mirage.ops", reason="mirage.ops needs mirage.etf")

from mirage import image as image_module  # noqa: E402
from mirage.buffers import Encoded  # noqa: E402 - after the skips above
from mirage.errors import (  # noqa: E402
    InvalidDimensions,
    TooManyPixels,
    UnsupportedImageFormat,
)
from mirage.formats import FORMATS  # noqa: E402
from mirage.image import Image, crop, formats, from_bytes, thumbnail, to_bytes  # noqa: E402
from tests.conftest import (  # noqa: E402
    BLUE,
    GREEN,
    RED,
    bands,
    encode,
    exif_bytes,
    gradient,
    is_close,
    open_bytes,
    quadrants,
)

Atom = etf.Atom
OPS = ops.OPS
Outcome = ops.Outcome

ALL_FORMATS = [Atom(f) for f in FORMATS]


def limits(max_pixels: int = 50_000_000, allowed: list[Any] | None = None) -> dict[str, Any]:
    return {
        "max_pixels": max_pixels,
        "allowed_formats": ALL_FORMATS if allowed is None else allowed,
    }


def args(**extra: Any) -> dict[str, Any]:
    return {**limits(), **extra}


def read(outcome_data: Encoded | None) -> bytes:
    assert isinstance(outcome_data, Encoded)
    with outcome_data:
        return outcome_data.to_bytes()


@pytest.fixture
def png() -> bytes:
    return encode(quadrants((80, 60)), "PNG")


@pytest.fixture
def held(png: bytes) -> Image:
    return from_bytes(png)


def test_table_has_every_operation() -> None:
    assert set(OPS) == {
        "from_bytes",
        "info",
        "thumbnail",
        "resize",
        "crop",
        "rotate",
        "flip",
        "auto_orient",
        "to_bytes",
        "formats",
    }
    assert all(callable(fn) for fn in OPS.values())


def test_atom_is_a_str() -> None:
    # Everything below relies on atoms comparing equal to their names.
    assert isinstance(Atom("jpg"), str) and Atom("jpg") == "jpg"


# --- each operation's outcome -----------------------------------------------------------------


def test_from_bytes(png: bytes) -> None:
    out = OPS["from_bytes"](png, limits())
    assert isinstance(out, Outcome)
    assert out.data is None and out.term is None
    assert isinstance(out.image, Image)
    assert (out.image.format, out.image.width, out.image.height) == ("png", 80, 60)
    assert out.image.byte_size == len(png)


def test_info_term() -> None:
    data = encode(gradient((30, 20)).convert("RGBA"), "PNG", exif=exif_bytes(6))
    out = OPS["info"](data, limits())
    assert out.data is None and out.image is None
    term = out.term
    assert isinstance(term, dict)
    assert all(type(k) is Atom for k in term)
    assert term == {
        "format": "png",
        "width": 30,
        "height": 20,
        "frames": 1,
        "orientation": 6,
        "has_alpha": True,
        "mode": "RGBA",
    }
    assert type(term["format"]) is Atom  # an atom on the Elixir side
    assert type(term["mode"]) is str  # a string (binary) on the Elixir side
    assert type(term["has_alpha"]) is bool


@pytest.mark.parametrize(("name", "sources"), [("thumbnail", "bytes+held"), ("resize", "held")])
def test_thumbnail_and_resize_from_bytes_and_held(
    name: str, sources: str, png: bytes, held: Image
) -> None:
    for source in (png, held) if sources == "bytes+held" else (held,):
        out = OPS[name](source, args(width=40, height=40))
        assert out.term is None
        data = read(out.data)
        assert isinstance(out.image, Image)
        assert (out.image.width, out.image.height, out.image.byte_size) == (40, 40, len(data))
        assert open_bytes(data).size == (40, 40)


def test_thumbnail_options_as_atoms() -> None:
    data = encode(bands((300, 100), [RED, GREEN, BLUE], vertical=True), "PNG")
    out = OPS["thumbnail"](
        data,
        args(
            width=60,
            height=60,
            fit=Atom("fill"),
            gravity=Atom("east"),
            filter=Atom("nearest"),
            format=Atom("webp"),
            quality=90,
            strip=True,
            upscale=True,
            auto_orient=True,
            frames=Atom("first"),
        ),
    )
    result = open_bytes(read(out.data))
    assert (result.format, result.size) == ("WEBP", (60, 60))
    assert is_close(result.convert("RGB").getpixel((30, 30)), BLUE, 10)
    assert out.image is not None and out.image.format == "webp"
    assert type(out.image.format) is str


@pytest.mark.parametrize(
    ("gravity", "colour"), [((0.0, 0.5), RED), ([1.0, 0.5], BLUE), (Atom("center"), GREEN)]
)
def test_thumbnail_gravity_shapes(gravity: object, colour: tuple[int, int, int]) -> None:
    # A tuple from Elixir, a list, or a named atom.
    data = encode(bands((300, 100), [RED, GREEN, BLUE], vertical=True), "PNG")
    out = OPS["thumbnail"](data, args(width=50, height=50, gravity=gravity))
    assert is_close(open_bytes(read(out.data)).convert("RGB").getpixel((25, 25)), colour, 4)


def test_thumbnail_fit_and_upscale() -> None:
    data = encode(gradient((40, 20)), "PNG")
    contain = OPS["thumbnail"](data, args(width=100, height=100, fit=Atom("contain")))
    assert open_bytes(read(contain.data)).size == (100, 50)
    kept = OPS["thumbnail"](data, args(width=100, height=100, fit=Atom("contain"), upscale=False))
    assert open_bytes(read(kept.data)).size == (40, 20)


def test_none_options_mean_defaults(png: bytes) -> None:
    # An Elixir nil (None) for an option is the same as leaving it out.
    plain = read(OPS["thumbnail"](png, args(width=20, height=20)).data)
    nils = read(
        OPS["thumbnail"](
            png, args(width=20, height=20, fit=None, gravity=None, format=None, quality=None)
        ).data
    )
    assert plain == nils


def test_crop(held: Image) -> None:
    out = OPS["crop"](held, args(x=40, y=0, width=40, height=30))
    assert out.data is None and out.term is None
    assert out.image is not None
    assert (out.image.width, out.image.height, out.image.byte_size) == (40, 30, None)
    again = OPS["to_bytes"](out.image, args())
    assert open_bytes(read(again.data)).convert("RGB").getpixel((20, 15)) == GREEN


def test_crop_errors(held: Image) -> None:
    with pytest.raises(InvalidDimensions):
        OPS["crop"](held, args(x=50, y=0, width=40, height=30))
    with pytest.raises(InvalidDimensions):
        OPS["crop"](held, args(x=-1, y=0, width=10, height=10))
    with pytest.raises(TooManyPixels):
        OPS["crop"](held, {**args(x=0, y=0, width=40, height=30), "max_pixels": 1000})


def test_rotate(held: Image) -> None:
    out = OPS["rotate"](held, args(degrees=90))
    assert out.image is not None and (out.image.width, out.image.height) == (60, 80)
    assert out.data is None and out.term is None
    free = OPS["rotate"](held, args(degrees=45, background=[255, 0, 0]))
    assert free.image is not None
    corner = open_bytes(read(OPS["to_bytes"](free.image, args()).data)).getpixel((0, 0))
    assert corner[:3] == (255, 0, 0)
    tuple_bg = OPS["rotate"](held, args(degrees=45.0, background=(0, 0, 255, 0)))
    corner = open_bytes(read(OPS["to_bytes"](tuple_bg.image, args()).data)).getpixel((0, 0))
    assert corner == (0, 0, 255, 0)


@pytest.mark.parametrize(
    ("direction", "method"),
    [
        (Atom("horizontal"), PILImage.Transpose.FLIP_LEFT_RIGHT),
        (Atom("vertical"), PILImage.Transpose.FLIP_TOP_BOTTOM),
    ],
)
def test_flip(held: Image, direction: Atom, method: PILImage.Transpose) -> None:
    out = OPS["flip"](held, args(direction=direction))
    assert out.image is not None and out.data is None
    data = read(OPS["to_bytes"](out.image, args()).data)
    assert open_bytes(data).tobytes() == quadrants((80, 60)).transpose(method).tobytes()


def test_auto_orient() -> None:
    image = from_bytes(encode(gradient((30, 20)), "PNG", exif=exif_bytes(6)))
    out = OPS["auto_orient"](image, args())
    assert out.image is not None
    assert (out.image.width, out.image.height, out.image.orientation) == (20, 30, 1)
    upright = from_bytes(encode(gradient((30, 20)), "PNG"))
    assert OPS["auto_orient"](upright, args()).image is upright


def test_to_bytes_options(held: Image) -> None:
    out = OPS["to_bytes"](
        held,
        args(
            format=Atom("jpg"),
            quality=50,
            progressive=True,
            optimize=True,
            lossless=False,
            compress_level=None,
            strip=True,
        ),
    )
    assert out.image is None and out.term is None
    data = read(out.data)
    assert data[:2] == b"\xff\xd8" and b"\xff\xc2" in data
    webp = read(OPS["to_bytes"](held, args(format=Atom("webp"), lossless=True)).data)
    assert webp[12:16] == b"VP8L"
    level0 = read(OPS["to_bytes"](held, args(compress_level=0)).data)
    level9 = read(OPS["to_bytes"](held, args(compress_level=9)).data)
    assert len(level0) > len(level9)


def test_formats_term() -> None:
    out = OPS["formats"](None, limits())
    assert out.data is None and out.image is None
    term = out.term
    assert set(term) == {"read", "write", "allowed"}
    assert all(type(k) is Atom for k in term)
    assert all(type(f) is Atom for v in term.values() for f in v)
    assert {k: [str(f) for f in v] for k, v in term.items()} == formats()


# --- limits ------------------------------------------------------------------------------------


def test_allowed_formats_as_atoms(png: bytes) -> None:
    jpg_only = limits(allowed=[Atom("jpg")])
    for name in ("from_bytes", "info"):
        with pytest.raises(UnsupportedImageFormat):
            OPS[name](png, jpg_only)
    with pytest.raises(UnsupportedImageFormat):
        OPS["thumbnail"](png, {**jpg_only, "width": 5, "height": 5})
    image = OPS["from_bytes"](png, limits(allowed=[Atom("png")])).image
    assert image is not None and image._allowed == ("png",)
    assert all(type(f) is str for f in image._allowed)


def test_max_pixels_is_enforced(png: bytes) -> None:
    with pytest.raises(TooManyPixels):
        OPS["from_bytes"](png, limits(max_pixels=80 * 60 - 1))
    with pytest.raises(TooManyPixels):
        OPS["thumbnail"](png, {**limits(max_pixels=5000), "width": 100, "height": 100})
    held = OPS["from_bytes"](png, limits()).image
    with pytest.raises(TooManyPixels):
        OPS["rotate"](held, {**limits(max_pixels=5000), "degrees": 45})


# --- wrong source types ----------------------------------------------------------------------

NEEDS: dict[str, str] = {
    "from_bytes": "bytes",
    "info": "bytes",
    "thumbnail": "either",
    "resize": "held",  # as image.resize: never bytes
    "crop": "held",
    "rotate": "held",
    "flip": "held",
    "auto_orient": "held",
    "to_bytes": "held",
}

EVERY_ARG: Mapping[str, Any] = args(
    width=5, height=5, x=0, y=0, degrees=90, direction=Atom("horizontal")
)


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_wrong_source_type_is_a_type_error(name: str, png: bytes, held: Image) -> None:
    wrong: list[object] = [None, 42, "a string", bytearray(png)]
    if NEEDS[name] == "bytes":
        wrong.append(held)
    if NEEDS[name] == "held":
        wrong.append(png)
    for source in wrong:
        with pytest.raises(TypeError):
            OPS[name](source, EVERY_ARG)  # type: ignore[arg-type]
    right = png if NEEDS[name] != "held" else held
    OPS[name](right, EVERY_ARG)  # and the right type works with the same args


def test_outcomes_from_thumbnail_can_be_chained(png: bytes) -> None:
    # The held image a thumbnail returns feeds the next operation, as Elixir uses it.
    first = OPS["thumbnail"](png, args(width=40, height=30))
    read(first.data)
    second = OPS["crop"](first.image, args(x=0, y=0, width=20, height=15))
    gif = read(OPS["to_bytes"](second.image, args(format=Atom("gif"))).data)
    result = open_bytes(gif)
    assert (result.format, result.size) == ("GIF", (20, 15))
    assert result.convert("RGB").getpixel((10, 7)) == RED
    # The same chain through the Python API gives the same bytes.
    _, image = thumbnail(png, 40, 30)
    assert to_bytes(crop(image, 0, 0, 20, 15), format="gif") == gif


def test_bmp_to_bytes_of_held(held: Image) -> None:
    data = read(OPS["to_bytes"](held, args(format=Atom("bmp"))).data)
    assert PILImage.open(io.BytesIO(data)).format == "BMP"


@pytest.mark.parametrize("name", ["from_bytes", "info", "thumbnail"])
def test_byte_sources_may_be_memoryviews(name: str, png: bytes) -> None:
    # The NIF lends the Erlang binary as a memoryview instead of copying it.
    from_view = OPS[name](memoryview(png), EVERY_ARG)
    from_bytes_ = OPS[name](png, EVERY_ARG)
    if name == "info":
        assert from_view.term == from_bytes_.term
    elif name == "thumbnail":
        assert read(from_view.data) == read(from_bytes_.data)
    else:
        assert from_view.image is not None and from_bytes_.image is not None
        assert from_view.image.byte_size == from_bytes_.image.byte_size == len(png)


def test_info_keys_are_an_explicit_tuple_of_info_fields(png: bytes) -> None:
    # The keys are written out (Elixir must know each atom), and must stay Info's.
    assert isinstance(ops.INFO_KEYS, tuple)
    assert set(ops.INFO_KEYS) == set(image_module.Info.__dataclass_fields__)
    term = OPS["info"](png, limits()).term
    assert list(term) == [Atom(k) for k in ops.INFO_KEYS]


def test_option_names_are_image_keywords() -> None:
    # Every option ops forwards is a keyword the image function takes.
    thumbnail_keys = image_module.ThumbnailOptions.__optional_keys__
    assert set(ops._THUMBNAIL_OPTIONS) | {"gravity"} <= thumbnail_keys
    assert set(ops._ENCODE_OPTIONS) <= image_module.EncodeKeywords.__optional_keys__


def test_resize_refuses_bytes_like_image_resize(png: bytes) -> None:
    with pytest.raises(TypeError):
        image_module.resize(png, 10, 10)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        OPS["resize"](png, args(width=10, height=10))


def test_run_dispatches_by_name(png: bytes) -> None:
    assert ops.run("info", png, limits()).term == OPS["info"](png, limits()).term
    with pytest.raises(ValueError, match="unknown operation"):
        ops.run("no_such_operation", png, limits())
