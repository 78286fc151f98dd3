"""mirage.codec: the allowlist, decoding frames, and encoding to a memfd."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageCms, features

from mirage import codec
from mirage.codec import (
    ALPHA_MODES,
    ANIMATED,
    EXIF_FORMATS,
    EncodeOptions,
    Frames,
    decode_frames,
    encode,
    has_alpha,
    open_image,
    readable,
    resizable,
    stored_size,
    verify,
    writable,
)
from mirage.errors import EncodeFailed, TruncatedImage, UnsupportedImageFormat
from mirage.formats import FORMATS, PILLOW_NAME
from tests.conftest import BLUE, GREEN, RED, exif_bytes, gradient, open_bytes, quadrants
from tests.conftest import encode as pil_encode

LINUX_FDS = Path("/proc/self/fd")


def frames_of(*images: PILImage.Image, durations: tuple[int, ...] = (), loop: int | None = None):  # type: ignore[no-untyped-def]
    return Frames(tuple(images), durations, loop)


def encoded_bytes(frames: Frames, fmt: str, options: EncodeOptions | None = None) -> bytes:
    with encode(frames, fmt, options or EncodeOptions()) as out:
        return out.to_bytes()


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("jpg", {"quality": 85, "progressive": False, "optimize": False}),
        ("png", {"optimize": False}),
        ("gif", {}),
        ("webp", {"quality": 80, "lossless": False}),
        ("bmp", {}),
        ("tiff", {"compression": "tiff_lzw"}),
    ],
)
def test_output_equals_pillows(fmt: str, params: dict[str, object]) -> None:
    # The memfd route must not change a byte of what Pillow writes (defaults included).
    im = gradient((60, 40))
    assert encoded_bytes(frames_of(im), fmt) == pil_encode(im, PILLOW_NAME[fmt], **params)


def test_options_reach_pillow() -> None:
    im = gradient((60, 40))
    options = EncodeOptions(quality=40, progressive=True, optimize=True)
    assert encoded_bytes(frames_of(im), "jpg", options) == pil_encode(
        im, "JPEG", quality=40, progressive=True, optimize=True
    )
    assert encoded_bytes(frames_of(im), "png", EncodeOptions(compress_level=1)) == pil_encode(
        im, "PNG", compress_level=1, optimize=False
    )
    assert encoded_bytes(frames_of(im), "webp", EncodeOptions(lossless=True)) == pil_encode(
        im, "WEBP", lossless=True, quality=80
    )


def test_extra_options_override() -> None:
    im = gradient((60, 40))
    out = encoded_bytes(frames_of(im), "jpg", EncodeOptions(extra={"subsampling": 0}))
    assert out == pil_encode(im, "JPEG", quality=85, subsampling=0)


@pytest.mark.parametrize("fmt", EXIF_FORMATS)
def test_exif_formats_carry_exif(fmt: str) -> None:
    out = encoded_bytes(frames_of(gradient((30, 20))), fmt, EncodeOptions(exif=exif_bytes(6)))
    assert PILImage.open(io.BytesIO(out)).getexif().get(0x0112) == 6


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - set(EXIF_FORMATS)))
def test_other_formats_ignore_exif(fmt: str) -> None:
    # gif and bmp have no EXIF; passing one must not break the encode.
    out = encoded_bytes(frames_of(gradient((30, 20))), fmt, EncodeOptions(exif=exif_bytes(6)))
    assert out == encoded_bytes(frames_of(gradient((30, 20))), fmt)


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tiff"])
def test_icc_profile_is_written(fmt: str) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = encoded_bytes(frames_of(gradient((30, 20))), fmt, EncodeOptions(icc_profile=profile))
    assert open_bytes(out).info.get("icc_profile") == profile


# --- modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "fmt", "expected"),
    [
        ("LAB", "jpg", "RGB"),
        ("LAB", "png", "RGB"),  # LAB's "A" is a colour channel, not alpha
        ("LAB", "tiff", "RGB"),
        ("HSV", "png", "RGB"),
        ("YCbCr", "webp", "RGB"),
        ("RGBA", "jpg", "RGB"),
        ("LA", "jpg", "RGB"),
        ("LA", "webp", "RGBA"),
        ("RGBa", "png", "RGBA"),
        ("CMYK", "png", "RGB"),
        ("CMYK", "jpg", "CMYK"),
        ("I", "png", "I;16"),
        ("I;16", "png", "I;16"),
        ("RGB", "gif", "P"),
    ],
    ids=str,
)
def test_unwritable_modes_are_converted(mode: str, fmt: str, expected: str) -> None:
    colour = (200, 60, 30)
    source = PILImage.new("RGBA", (16, 16), (*colour, 128) if "A" in mode else (*colour, 255))
    im = source.convert(mode) if mode not in ("I", "I;16") else PILImage.new(mode, (16, 16), 300)
    out = open_bytes(encoded_bytes(frames_of(im), fmt))
    if expected == "RGBA" and fmt == "webp":
        assert out.mode == "RGBA"
        assert abs(out.getpixel((8, 8))[3] - 128) <= 2  # the alpha survived
        return
    assert out.mode == expected
    if mode in ("I", "I;16"):
        assert out.getpixel((8, 8)) == 300  # 16-bit values are not squeezed to 8 bits
    elif mode not in ("LA", "HSV", "YCbCr"):
        rgb = out.convert("RGB").getpixel((8, 8))
        assert all(abs(a - b) <= 12 for a, b in zip(rgb, colour, strict=True)), rgb


def test_alpha_modes() -> None:
    assert {"RGBA", "LA", "PA"} <= ALPHA_MODES
    assert "LAB" not in ALPHA_MODES and "RGB" not in ALPHA_MODES


def test_has_alpha() -> None:
    assert has_alpha(PILImage.new("RGBA", (2, 2)))
    assert has_alpha(PILImage.new("LA", (2, 2)))
    assert not has_alpha(PILImage.new("RGB", (2, 2)))
    assert not has_alpha(PILImage.new("RGB", (2, 2)).convert("LAB"))
    palette = PILImage.new("P", (2, 2))
    assert not has_alpha(palette)
    palette.info["transparency"] = 0
    assert has_alpha(palette)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("P", "RGB"), ("1", "L"), ("I;16", "I"), ("RGB", "RGB"), ("L", "L"), ("RGBA", "RGBA")],
)
def test_resizable_modes(mode: str, expected: str) -> None:
    im = PILImage.new(mode, (4, 4))
    out = resizable(im)
    assert out.mode == expected
    # Every filter works on the result (Pillow refuses all but nearest on P and 1).
    out.resize((2, 2), PILImage.Resampling.LANCZOS)


def test_resizable_palette_with_transparency_gets_alpha() -> None:
    im = PILImage.new("P", (4, 4))
    im.info["transparency"] = 0
    assert resizable(im).mode == "RGBA"


# --- open_image and verify --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_image_reads_only_the_header(fmt: str, pixel_loads: list[str]) -> None:
    data = pil_encode(gradient((30, 20)), PILLOW_NAME[fmt])
    pixel_loads.clear()
    im = open_image(data)
    assert (im.format, im.size) == (PILLOW_NAME[fmt], (30, 20))
    assert pixel_loads == []
    im.load()
    assert pixel_loads  # the spy does see a decode


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_image_honours_the_allowlist(fmt: str) -> None:
    data = pil_encode(gradient((30, 20)), PILLOW_NAME[fmt])
    assert open_image(data, (fmt,)).format == PILLOW_NAME[fmt]
    others = tuple(f for f in FORMATS if f != fmt)
    with pytest.raises(UnsupportedImageFormat):
        open_image(data, others)
    with pytest.raises(UnsupportedImageFormat):
        open_image(data, ())


def test_open_image_tries_no_plugin_outside_the_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    # A disallowed plugin must not even look at the bytes.
    seen: list[str] = []
    for name in ("PNG", "GIF"):
        factory, accept = PILImage.OPEN[name]

        def spy(prefix: bytes, _accept=accept, _name=name) -> object:  # type: ignore[no-untyped-def]
            seen.append(_name)
            return _accept(prefix)

        monkeypatch.setitem(PILImage.OPEN, name, (factory, spy))
    with pytest.raises(UnsupportedImageFormat):
        open_image(pil_encode(gradient((8, 8)), "PNG"), ("jpg", "bmp"))
    assert seen == []


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    ("fmt", "cut"),
    [("PNG", 20), ("PNG", 8), ("JPEG", 30), ("GIF", 10), ("BMP", 20), ("WEBP", 24), ("TIFF", 8)],
    ids=str,
)
def test_open_image_cut_header_is_truncated(fmt: str, cut: int) -> None:
    data = pil_encode(gradient((30, 20)), fmt)
    with pytest.raises(TruncatedImage):
        open_image(data[:cut])


def test_open_image_unknown_bytes() -> None:
    with pytest.raises(UnsupportedImageFormat):
        open_image(b"hello, not an image")
    with pytest.raises(UnsupportedImageFormat):
        open_image(b"")


def test_verify_reopens_png_and_passes_others_through() -> None:
    png = pil_encode(gradient((30, 20)), "PNG")
    im = open_image(png)
    again = verify(png, im, FORMATS)
    assert again is not im  # verify() consumes a Pillow image, so a fresh one comes back
    again.load()
    assert again.size == (30, 20)
    jpg = pil_encode(gradient((30, 20)), "JPEG")
    im = open_image(jpg)
    assert verify(jpg, im, FORMATS) is im


def test_verify_catches_a_bad_chunk_crc() -> None:
    png = bytearray(pil_encode(gradient((30, 20)), "PNG"))
    start = png.index(b"IDAT") + 4
    (length,) = struct.unpack(">I", png[start - 8 : start - 4])
    png[start + length] ^= 0xFF  # the CRC after IDAT
    assert (
        zlib.crc32(bytes(png[start - 4 : start + length]))
        != struct.unpack(">I", png[start + length : start + length + 4])[0]
    )
    with pytest.raises(SyntaxError):
        verify(bytes(png), open_image(bytes(png)), FORMATS)


# --- decode_frames ----------------------------------------------------------------------------


def test_decode_one_frame_drops_metadata() -> None:
    data = pil_encode(gradient((30, 20)), "JPEG", exif=exif_bytes(6), comment=b"hello")
    frames = decode_frames(open_image(data), 1)
    assert len(frames.images) == 1 and frames.first.size == (30, 20)
    assert frames.first.info == {}  # nothing reaches an encoder unless asked for
    assert frames.durations == () and frames.loop is None


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_decode_all_frames_with_timing(fmt: str) -> None:
    images = [PILImage.new("RGB", (20, 10), c) for c in (RED, GREEN, BLUE)]
    lossless = {"lossless": True} if fmt == "WEBP" else {}
    data = pil_encode(
        images[0],
        fmt,
        save_all=True,
        append_images=images[1:],
        duration=[40, 80, 120],
        loop=2,
        **lossless,
    )
    frames = decode_frames(open_image(data), 3)
    assert frames.durations == (40, 80, 120)
    assert frames.loop == 2
    colours = [im.convert("RGB").getpixel((5, 5)) for im in frames.images]
    assert colours == [RED, GREEN, BLUE]
    assert all(im.info == {} for im in frames.images)
    # Frames are independent copies, not views of one reused buffer.
    assert len({id(im) for im in frames.images}) == 3


def test_decode_fewer_frames_than_stored() -> None:
    images = [PILImage.new("RGB", (20, 10), c) for c in (RED, GREEN, BLUE)]
    data = pil_encode(images[0], "GIF", save_all=True, append_images=images[1:])
    frames = decode_frames(open_image(data), 2)
    assert [im.convert("RGB").getpixel((0, 0)) for im in frames.images] == [RED, GREEN]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_frames_come_back_as_stored(orientation: int) -> None:
    # Pillow's TIFF reader turns the pixels upright; decode_frames undoes that so
    # TIFF follows the same "stored pixels + orientation" rule as JPEG and WebP.
    stored = quadrants((30, 20))
    data = pil_encode(stored, "TIFF", exif=exif_bytes(orientation))
    im = open_image(data)
    assert stored_size(im) == (30, 20)
    frames = decode_frames(im, 1)
    assert frames.first.tobytes() == stored.tobytes()


def test_frames_map_keeps_timing() -> None:
    frames = frames_of(PILImage.new("RGB", (4, 2)), durations=(10,), loop=3)
    mapped = frames.map(lambda im: im.resize((2, 1)))
    assert mapped.first.size == (2, 1)
    assert (mapped.durations, mapped.loop) == ((10,), 3)


def test_encode_animation_keeps_timing_and_single_frame_formats_take_the_first() -> None:
    images = tuple(PILImage.new("RGB", (20, 10), c) for c in (RED, GREEN, BLUE))
    frames = Frames(images, (40, 80, 120), 0)
    for fmt in ANIMATED:
        out = PILImage.open(io.BytesIO(encoded_bytes(frames, fmt, EncodeOptions(lossless=True))))
        assert out.n_frames == 3, fmt
        durations = []
        for index in range(3):
            out.seek(index)
            out.load()
            durations.append(int(out.info["duration"]))
        assert durations == [40, 80, 120], fmt
    for fmt in ("jpg", "bmp", "tiff"):
        out = open_bytes(encoded_bytes(frames, fmt))
        assert getattr(out, "n_frames", 1) == 1
        assert out.convert("RGB").getpixel((5, 5))[0] > 200  # the red first frame


# --- readable / writable --------------------------------------------------------------------


def test_readable_and_writable_match_pillow() -> None:
    # Whatever codec claims, Pillow must really round-trip; whatever it leaves out must fail.
    for fmt in FORMATS:
        name = PILLOW_NAME[fmt]
        try:
            data = pil_encode(gradient((8, 8)), name)
            can_write = True
        except (OSError, KeyError):
            can_write = False
        assert (fmt in writable()) == can_write, fmt
        if can_write:
            try:
                open_bytes(data)
                can_read = True
            except OSError:
                can_read = False
            assert (fmt in readable()) == can_read, fmt


def test_webp_depends_on_the_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ("webp" in readable()) == bool(features.check("webp"))
    monkeypatch.setattr(codec.features, "check", lambda name: False)
    assert "webp" not in readable() and "webp" not in writable()
    assert "png" in readable() and "png" in writable()


def test_readable_order_is_formats_order() -> None:
    assert readable() == [f for f in FORMATS if f in readable()]
    assert writable() == [f for f in FORMATS if f in writable()]


def test_encode_failure_is_encode_failed() -> None:
    with pytest.raises(EncodeFailed):
        encode(frames_of(gradient((8, 8))), "jpg", EncodeOptions(extra={"subsampling": "bogus"}))
