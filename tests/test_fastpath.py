"""The thumbnail's speed tuning (mirage.fastpath, mirage.webpscale): each shortcut gives
the picture the reference path gives, within the thresholds of tests/test_imaging.py,
and falls back to Pillow where it does not apply."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from mirage import codec, fastpath, geometry, pngfast, webpscale
from mirage.codec import EncodeOptions, Frames
from mirage.errors import MirageError
from mirage.image import thumbnail, to_bytes
from tests.conftest import bench_bytes, encode, gradient, mean_abs_diff, open_bytes
from tests.test_thumbnail import FILTER_MAD, reference


def photo(size: tuple[int, int]) -> PILImage.Image:
    """Detail at every scale (noise over a gradient), like a photograph."""
    noise = PILImage.effect_noise(size, 40).convert("RGB")
    return PILImage.blend(gradient((size[0] // 10, size[1] // 10)).resize(size), noise, 0.3)


@pytest.fixture(scope="module")
def webp_photo() -> bytes:
    return encode(photo((1200, 900)), "WEBP", quality=90)


# --- WebP: scaled decoding in libwebp ---------------------------------------------------------


def test_libwebp_is_found() -> None:
    # Pillow here is built with WebP (formats() says so), so the shortcut must be live:
    # a silent fallback would pass every other test while losing the speed.
    if "webp" not in codec.readable():
        pytest.skip("this Pillow has no WebP support")
    assert webpscale._library() is not None


def test_scaled_decode_is_the_picture_at_the_asked_scale(webp_photo: bytes) -> None:
    full = open_bytes(webp_photo).convert("RGB")
    decoded = webpscale.decode_scaled(webp_photo, full.size, (300, 200))
    assert decoded is not None
    im, (sx, sy) = decoded
    # The smallest uniform scale covering the request on both axes, each side whole.
    assert im.size == (300, 225) and (sx, sy) == (300 / 1200, 225 / 900)
    assert mean_abs_diff(im, full.resize(im.size, PILImage.Resampling.BOX)) < FILTER_MAD["lanczos"]


@pytest.mark.parametrize(
    "case", ["no_smaller", "alpha", "animation", "size_mismatch", "truncated", "bad_start_code"]
)
def test_scaled_decode_declines(case: str, webp_photo: bytes) -> None:
    data, size, request = webp_photo, (1200, 900), (300, 200)
    if case == "no_smaller":
        request = (1200, 1)
    elif case == "alpha":
        im = photo((120, 90)).convert("RGBA")
        im.putalpha(128)
        data, size = encode(im, "WEBP"), (120, 90)
    elif case == "animation":
        frames = [photo((120, 90)), gradient((120, 90))]
        data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
        size = (120, 90)
    elif case == "size_mismatch":
        size = (1201, 900)
    elif case == "truncated":
        data = webp_photo[: len(webp_photo) // 2]
    else:
        # The VP8 start code (after the RIFF, chunk and frame headers) broken.
        assert webp_photo[23:26] == b"\x9d\x01\x2a"
        data = webp_photo[:23] + b"\x00\x00\x00" + webp_photo[26:]
    assert webpscale.decode_scaled(data, size, request) is None


def test_truncated_webp_keeps_its_reason(
    webp_photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shortcut declines; Pillow's decode then names the failure as it always did.
    cut = webp_photo[: len(webp_photo) * 2 // 3]
    with pytest.raises(MirageError) as tuned:
        thumbnail(cut, 64, 64)
    monkeypatch.setattr(fastpath, "webp_draft", lambda *args: None)
    with pytest.raises(MirageError) as plain:
        thumbnail(cut, 64, 64)
    assert tuned.value.reason == plain.value.reason


@pytest.mark.parametrize("filter_", ["bilinear", "lanczos"])
@pytest.mark.parametrize(
    ("target", "fit", "gravity"),
    [
        ((256, 256), "fill", "center"),
        ((64, 64), "fill", "south_east"),
        ((300, 300), "contain", "center"),
    ],
    ids=str,
)
def test_webp_thumbnail_matches_the_reference(
    webp_photo: bytes, target: tuple[int, int], fit: str, gravity: str, filter_: str
) -> None:
    out, image = thumbnail(
        webp_photo, *target, fit=fit, gravity=gravity, filter=filter_, format="png"
    )  # type: ignore[arg-type]
    ref = reference(webp_photo, *target, fit, gravity)
    assert (image.width, image.height) == ref.size
    assert mean_abs_diff(open_bytes(out), ref) < FILTER_MAD[filter_]


@pytest.mark.parametrize("filter_", ["bilinear", "lanczos"])
def test_bench_webp_matches_the_reference(filter_: str) -> None:
    data = bench_bytes("photo_2000x1500.webp")
    out, _ = thumbnail(data, 256, 256, filter=filter_, format="png")  # type: ignore[arg-type]
    ref = reference(data, 256, 256, "fill", "center")
    assert mean_abs_diff(open_bytes(out), ref) < FILTER_MAD[filter_]


def test_webp_draft_uses_the_filters_margin(
    webp_photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    original = webpscale.decode_scaled

    def spy(data, size, request):  # type: ignore[no-untyped-def]
        result = original(data, size, request)
        seen.append(result[0].size if result else size)
        return result

    monkeypatch.setattr(webpscale, "decode_scaled", spy)
    thumbnail(webp_photo, 150, 150)
    thumbnail(webp_photo, 150, 150, filter="lanczos")
    assert seen == [(200, 150), (400, 300)]  # covering for bilinear, 2x for Lanczos


# --- animations: frames on several threads, one GIF palette ----------------------------------


def test_map_frames_keeps_order_and_pixels() -> None:
    frames = Frames(tuple(photo((200, 150)) for _ in range(6)), (10,) * 6, 0)

    def shrink(im: PILImage.Image) -> PILImage.Image:
        return im.resize((120, 90), PILImage.Resampling.BILINEAR)

    threaded = fastpath.map_frames(shrink, frames, out_pixels=10**9)
    assert [im.tobytes() for im in threaded.images] == [
        shrink(im).tobytes() for im in frames.images
    ]
    assert (threaded.durations, threaded.loop) == (frames.durations, frames.loop)


def test_gif_frames_share_one_palette() -> None:
    frames = Frames(tuple(photo((64, 48)) for _ in range(3)))
    mapped = fastpath.palettes(frames, "gif")
    assert {im.mode for im in mapped.images} == {"P"}
    assert len({bytes(im.getpalette() or []) for im in mapped.images}) == 1
    # Other formats, and frames with transparency, are left as they are.
    assert fastpath.palettes(frames, "webp") is frames
    translucent = Frames(tuple(im.convert("RGBA") for im in frames.images))
    assert fastpath.palettes(translucent, "gif") is translucent


def gif_frames(data: bytes) -> list[PILImage.Image]:
    im = PILImage.open(io.BytesIO(data))
    frames = []
    for index in range(im.n_frames):
        im.seek(index)
        frames.append(im.convert("RGB"))
    return frames


def test_animated_gif_thumbnail_matches_the_reference() -> None:
    # Every frame against full decode + Lanczos: quantising to the shared palette
    # stays within the default filter's threshold.
    data = bench_bytes("anim_480x320_30f.gif")
    out, image = thumbnail(data, 256, 256)
    got, src = gif_frames(out), gif_frames(data)
    assert len(got) == len(src) == image.frames == 30
    p = geometry.plan(src[0].size, (256, 256), "fill")
    for frame, original in zip(got, src, strict=True):
        ref = original.resize(p.size, PILImage.Resampling.LANCZOS, box=p.box)
        assert mean_abs_diff(frame, ref) < FILTER_MAD["bilinear"]


def test_translucent_gif_keeps_transparency() -> None:
    frames = [PILImage.new("RGBA", (40, 40), (255, 0, 0, 0)) for _ in range(3)]
    for i, im in enumerate(frames):
        im.paste((0, 0, 255, 255), (10 * i, 10, 10 * i + 10, 20))
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], disposal=2)
    out, _ = thumbnail(data, 40, 40, filter="nearest")
    first = open_bytes(out).convert("RGBA")
    assert first.getpixel((35, 35))[3] == 0 and first.getpixel((5, 15))[3] == 255


# --- encoder settings ------------------------------------------------------------------------


def test_thumbnail_encoder_settings_reach_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(photo((400, 300)), "PNG")
    out, image = thumbnail(data, 200, 150)
    assert image._pixels is not None
    written = pngfast.encode(image._pixels.first)  # None without isal or its library
    assert out == (written.to_bytes() if written else to_bytes(image, compress_level=2))
    # When that path declines, Pillow writes it with the tuned level.
    monkeypatch.setattr(pngfast, "encode", lambda im: None)
    out, image = thumbnail(data, 200, 150)
    assert out == to_bytes(image, compress_level=2)
    webp = encode(photo((400, 300)), "WEBP")
    out, image = thumbnail(webp, 200, 150)
    assert image._pixels is not None
    with codec.encode(image._pixels, "webp", EncodeOptions(extra={"method": 2})) as expected:
        assert out == expected.to_bytes()


def test_to_bytes_keeps_pillows_defaults() -> None:
    im = photo((200, 150))
    data = encode(im, "PNG")
    _, image = thumbnail(data, 200, 150, filter="nearest")
    assert to_bytes(image) == encode(ImageOps.contain(im, (200, 150)), "PNG", optimize=False)
