"""Bounded cost whatever the file claims: frames as really decoded, scan and structure
limits checked before Pillow parses, header reads that do not walk the whole file."""

from __future__ import annotations

import base64
import io
import logging
import struct
import zlib

import pytest
from PIL import GifImagePlugin, TiffImagePlugin
from PIL import Image as PILImage

from mirage import survey
from mirage.errors import TooComplex, TooManyPixels
from mirage.image import crop, flip, from_bytes, info, thumbnail, to_bytes
from tests import crafted
from tests.conftest import encode, gradient

# --- GIF frames that enlarge the canvas -------------------------------------------------------


def gif_frame_block(im: PILImage.Image, left: int = 0, top: int = 0) -> bytes:
    """``im`` as one GIF image block (descriptor with a local palette, then its data)."""
    data = encode(im.convert("P"), "GIF")
    flags = data[10]
    palette = data[13 : 13 + (3 << ((flags & 7) + 1))] if flags & 0x80 else b""
    pos = 13 + len(palette)
    while data[pos] == 0x21:  # skip extensions up to the image descriptor
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    assert data[pos] == 0x2C
    width, height = struct.unpack("<HH", data[pos + 5 : pos + 9])
    local = 0x80 | (flags & 7) if palette else 0
    descriptor = b"\x2c" + struct.pack("<HHHHB", left, top, width, height, local)
    return descriptor + palette + data[pos + 10 : -1]  # LZW data up to the trailer


def gif_of(canvas: tuple[int, int], *blocks: bytes) -> bytes:
    """A GIF whose header claims ``canvas``, with the given image blocks as frames."""
    out = b"GIF89a" + struct.pack("<HHBBB", *canvas, 0, 0, 0)
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for block in blocks:
        out += b"\x21\xf9\x04\x00\x05\x00\x00\x00" + block  # 50 ms each
    return out + b"\x3b"


def extending_gif() -> bytes:
    """Header and first frame 64x64; the second frame is 1000x1000 (one megapixel)."""
    small = PILImage.new("RGB", (64, 64), (255, 0, 0))
    large = PILImage.new("RGB", (1000, 1000), (0, 0, 255))
    return gif_of((64, 64), gif_frame_block(small), gif_frame_block(large))


def test_the_extending_gif_is_what_pillow_decodes_large() -> None:
    im = PILImage.open(io.BytesIO(extending_gif()))
    assert im.size == (64, 64)
    im.seek(1)
    assert im.size == (1000, 1000)


def test_a_gif_frame_is_charged_at_the_canvas_pillow_gives_it(pixel_loads: list[str]) -> None:
    data = extending_gif()
    image = from_bytes(data, max_pixels=500_000)
    assert (image.width, image.height, image.frames) == (64, 64, 2)
    for op in (
        lambda: thumbnail(data, 32, 32, max_pixels=500_000),
        lambda: thumbnail(image, 32, 32, max_pixels=500_000),
        lambda: crop(image, 0, 0, 8, 8, max_pixels=500_000),
        lambda: flip(image, "vertical", max_pixels=500_000),
        lambda: to_bytes(image, max_pixels=500_000),
    ):
        with pytest.raises(TooManyPixels):
            op()
    assert "decoder" not in pixel_loads  # refused before any frame was decoded
    # The first frame alone costs its own canvas, and the whole costs what it decodes.
    assert thumbnail(image, 32, 32, frames="first", max_pixels=4096)[1].frames == 1
    assert thumbnail(image, 32, 32, max_pixels=1_000_000 + 4096)[1].frames == 2


def test_the_canvas_never_shrinks_for_later_frames() -> None:
    small = gif_frame_block(PILImage.new("RGB", (8, 8), (0, 255, 0)))
    wide = gif_frame_block(PILImage.new("RGB", (8, 8), (0, 0, 255)), left=992)
    data = gif_of((64, 64), small, wide, small, small)
    found = survey.survey(data, ("gif",), max_pixels=10**9)
    assert found.canvases == (64 * 64, 1000 * 64, 1000 * 64, 1000 * 64)
    with pytest.raises(TooManyPixels):
        thumbnail(data, 16, 16, max_pixels=3 * 64_000)
    assert thumbnail(data, 16, 16, max_pixels=4096 + 3 * 64_000)[1].frames == 4


# Found by the atheris run (hard-tools): a 10x10 GIF whose second frame declares a
# 60637x2815 extent. Pillow would enlarge the canvas to 170 MP and decode it (seconds of
# work before failing); the survey charges that frame first and refuses at once.
FUZZ_EXTENT_GIF = base64.b64decode(
    "R0lGODlhCgAKAPAAAAAAAAAAACH5BABkAAAAIf8LTkVUU0NBUEUyLjADAQAAACwAAAAACgAKAAACCISPqcvt"
    "D2MrACH5BABkAAAALAAAAADd7P8KAIBVVVUAAAACCAAACgAKAIBVVVUAAAACCISPqcvtD2MrADs="
)


def test_the_fuzz_found_extent_gif_is_refused_before_decoding(pixel_loads: list[str]) -> None:
    image = from_bytes(FUZZ_EXTENT_GIF)
    assert (image.width, image.height, image.frames) == (10, 10, 2)
    for op in (
        lambda: thumbnail(FUZZ_EXTENT_GIF, 10, 10),
        lambda: thumbnail(image, 10, 10),
        lambda: to_bytes(image, format="png"),
    ):
        with pytest.raises(TooManyPixels):
            op()
    assert "decoder" not in pixel_loads
    # Its first frame is an ordinary 10x10 image.
    assert thumbnail(FUZZ_EXTENT_GIF, 10, 10, frames="first")[1].frames == 1


# --- JPEG scans ---------------------------------------------------------------------------------


def progressive_jpeg() -> bytes:
    return encode(gradient((64, 48)), "JPEG", progressive=True, quality=90)


def with_extra_scans(data: bytes, copies: int) -> bytes:
    """``data`` with its last scan repeated: a file of many near-empty scans."""
    last = data.rfind(b"\xff\xda")
    scan = data[last:-2]  # up to the EOI marker
    return data[:-2] + scan * copies + data[-2:]


def test_progressive_jpeg_scans_are_limited() -> None:
    data = progressive_jpeg()
    scans = data.count(b"\xff\xda")
    assert scans > 2
    assert info(data, max_scans=scans).width == 64
    for op in (
        lambda: info(data, max_scans=scans - 1),
        lambda: from_bytes(data, max_scans=scans - 1),
        lambda: thumbnail(data, 16, 16, max_scans=scans - 1),
    ):
        with pytest.raises(TooComplex):
            op()


def test_thousands_of_scans_are_refused_by_default(pixel_loads: list[str]) -> None:
    data = with_extra_scans(progressive_jpeg(), 2000)
    with pytest.raises(TooComplex):
        thumbnail(data, 16, 16)
    assert "decoder" not in pixel_loads
    assert survey.DEFAULT_MAX_SCANS >= 30  # every real encoder's script fits


def test_the_exif_thumbnail_scan_is_not_counted() -> None:
    # An APP1 segment holding a whole progressive JPEG (as EXIF thumbnails hold a
    # JPEG) before the image's own segments.
    blob = b"Exif\x00\x00" + progressive_jpeg()
    segment = b"\xff\xe1" + struct.pack(">H", len(blob) + 2) + blob
    image = progressive_jpeg()
    data = image[:2] + segment + image[2:]
    scans = image.count(b"\xff\xda")
    assert survey.survey(data, ("jpg",), max_pixels=10**6).scans == scans
    assert info(data, max_scans=scans).width == 64


def test_a_sequential_jpeg_is_not_scanned_for_scans() -> None:
    # libjpeg fails at a sequential JPEG's scan out of place rather than decoding it
    # again, so the file is not read through to count them.
    data = encode(gradient((32, 32)), "JPEG")
    last = data.rfind(b"\xff\xda")
    padded = data[:-2] + data[last:-2] * 200 + data[-2:]
    assert survey.survey(padded, ("jpg",), max_pixels=10**6).scans == 1


# --- header walks ---------------------------------------------------------------------------


def jpeg_with_markers(count: int) -> bytes:
    data = encode(gradient((16, 16)), "JPEG")
    return data[:2] + b"\xff\xe5\x00\x02" * count + data[2:]  # empty APP5 segments


def test_a_flood_of_jpeg_markers_is_refused_before_pillow_parses_it() -> None:
    assert info(jpeg_with_markers(200)).width == 16
    with pytest.raises(TooComplex):
        info(jpeg_with_markers(survey.MAX_JPEG_SEGMENTS + 10))


def test_a_flood_of_junk_between_jpeg_markers_is_refused() -> None:
    data = encode(gradient((16, 16)), "JPEG")
    at = 4 + struct.unpack(">H", data[4:6])[0]  # after the APP0 segment
    assert info(data[:at] + b"\x00" * 1000 + data[at:]).width == 16
    with pytest.raises(TooComplex):
        info(data[:at] + b"\x00" * (survey.MAX_JUNK + 1) + data[at:])


def png_with_chunks(count: int) -> bytes:
    data = encode(gradient((16, 16)), "PNG")
    chunk = struct.pack(">I", 0) + b"prIv" + struct.pack(">I", zlib.crc32(b"prIv"))
    at = 8 + 25  # after the signature and IHDR
    return data[:at] + chunk * count + data[at:]


def test_a_flood_of_png_chunks_is_refused() -> None:
    assert thumbnail(png_with_chunks(500), 8, 8)[1].width == 8
    with pytest.raises(TooComplex):
        info(png_with_chunks(survey.PNG_CHUNKS_BASE + 200))
    with pytest.raises(TooComplex):
        thumbnail(png_with_chunks(survey.PNG_CHUNKS_BASE + 200), 8, 8)


def tiff_pages(count: int) -> bytes:
    pages = [PILImage.new("L", (2, 2), i % 256) for i in range(count)]
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def test_frames_and_pages_are_counted_right_for_normal_files() -> None:
    assert info(tiff_pages(3)).frames == 3
    gif = gif_of(
        (8, 8), *(gif_frame_block(PILImage.new("RGB", (8, 8), (i, 0, 0))) for i in (9, 99))
    )
    assert info(gif).frames == PILImage.open(io.BytesIO(gif)).n_frames == 2


def seeks(monkeypatch: pytest.MonkeyPatch, plugin: type) -> list[int]:
    calls: list[int] = []
    original = plugin._seek

    def spy(self, frame, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(frame)
        return original(self, frame, *args, **kwargs)

    monkeypatch.setattr(plugin, "_seek", spy)
    return calls


def test_the_header_read_does_not_walk_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiff_pages(survey.MIN_FRAMES_WALKED + 50)
    calls = seeks(monkeypatch, TiffImagePlugin.TiffImageFile)
    found = info(data, max_pixels=4096)
    # A lower bound past the walk's limit, found without Pillow seeking page by page.
    assert found.frames == survey.MIN_FRAMES_WALKED + 1
    assert len(calls) <= 1


def test_the_header_read_does_not_walk_every_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    block = gif_frame_block(PILImage.new("RGB", (1, 1)))
    data = gif_of((1, 1), *[block] * (survey.MIN_FRAMES_WALKED + 50))
    calls = seeks(monkeypatch, GifImagePlugin.GifImageFile)
    image = from_bytes(data, max_pixels=4096)
    assert image.frames == survey.MIN_FRAMES_WALKED + 1
    assert calls == [0]
    with pytest.raises(TooManyPixels):
        thumbnail(image, 1, 1, max_pixels=4096)
    assert thumbnail(image, 1, 1, frames="first", max_pixels=4096)[1].frames == 1


def parsed_tiff_directories(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each TIFF directory Pillow starts to parse."""
    calls: list[int] = []
    original = TiffImagePlugin.ImageFileDirectory_v2.load

    def spy(self, fp):  # type: ignore[no-untyped-def]
        calls.append(fp.tell())
        return original(self, fp)

    monkeypatch.setattr(TiffImagePlugin.ImageFileDirectory_v2, "load", spy)
    return calls


@pytest.mark.parametrize(
    ("layout", "needed"),
    [({"rows_per_strip": 32}, 2), ({"rows_per_strip": 5}, 13), ({"tile": (16, 16)}, 16)],
)
def test_tiff_strips_or_tiles_beyond_what_the_size_needs_are_refused(
    monkeypatch: pytest.MonkeyPatch, layout: dict[str, object], needed: int
) -> None:
    # Pillow decodes every listed strip or tile, going round the image again for the
    # surplus: a few KB of offsets cost seconds and hundreds of MB.
    assert thumbnail(crafted.tiff(64, 64, pieces=needed, **layout), 8, 8)[1].width == 8  # type: ignore[arg-type]
    surplus = crafted.tiff(64, 64, pieces=needed + 1, **layout)  # type: ignore[arg-type]
    parsed = parsed_tiff_directories(monkeypatch)
    for op in (lambda: info(surplus), lambda: thumbnail(surplus, 8, 8)):
        with pytest.raises(TooComplex):
            op()
    assert parsed == []  # refused before Pillow read the directory


def test_tiff_strips_are_charged_at_least_the_smallest_tile() -> None:
    # 2000 one-row strips of one pixel: 2000 pixels, but 2000 strips for Pillow to
    # handle one by one, each charged as 16x16 pixels.
    data = crafted.tiff(1, 2000, rows_per_strip=1)
    assert thumbnail(data, 1, 8, max_pixels=2000 * survey.STRIP_FLOOR)[1].height == 8
    with pytest.raises(TooComplex):
        info(data, max_pixels=2000 * survey.STRIP_FLOOR - 1)
    # Strips of more pixels than the floor are charged their pixels, as before.
    assert info(crafted.tiff(64, 64, rows_per_strip=4), max_pixels=64 * 64).width == 64


def test_a_tiff_directory_of_thousands_of_entries_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = 8  # the size, layout and strip tags tiff() writes
    for big in (False, True):
        fits = crafted.tiff(8, 8, extra_entries=survey.MAX_TIFF_ENTRIES - entries, big=big)
        assert thumbnail(fits, 4, 4)[1].width == 4
        flood = crafted.tiff(8, 8, extra_entries=survey.MAX_TIFF_ENTRIES - entries + 1, big=big)
        parsed = parsed_tiff_directories(monkeypatch)
        with pytest.raises(TooComplex):
            info(flood)
        assert parsed == []
        monkeypatch.undo()


# Pillow warns that XResolution should hold one value.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("tag", [282, 0x829A])  # XResolution; ExposureTime, in EXIF
def test_tiff_tags_of_too_many_values_are_refused(tag: int) -> None:
    # Pillow turns each rational into an object when a tag is read (the header read
    # reads the first page's tags and its EXIF directory): a million of them in 8 MB
    # took seconds and hundreds of MB.
    in_exif = tag != 282
    limit = survey.MAX_TIFF_VALUES // survey.RATIONAL_COST
    fits = crafted.tiff(8, 8, rationals=(tag, limit - 16), in_exif=in_exif)
    assert thumbnail(fits, 4, 4)[1].width == 4
    flood = crafted.tiff(8, 8, rationals=(tag, limit + 1), in_exif=in_exif)
    for op in (lambda: info(flood), lambda: thumbnail(flood, 4, 4)):
        with pytest.raises(TooComplex):
            op()


def test_exif_too_costly_to_write_back_is_not_kept(caplog: pytest.LogCaptureFixture) -> None:
    # strip=False writes the source's EXIF back through Pillow, which makes an object of
    # every value: a million rationals in a PNG's eXIf chunk took seconds.
    limit = survey.MAX_TIFF_VALUES // survey.RATIONAL_COST
    kept = from_bytes(crafted.png_with_exif(crafted.exif(orientation=6, rationals=limit - 16)))
    assert PILImage.open(io.BytesIO(to_bytes(kept, strip=False))).getexif()[0x829A]
    flood = from_bytes(crafted.png_with_exif(crafted.exif(orientation=6, rationals=limit + 1)))
    with caplog.at_level(logging.WARNING, logger="mirage"):
        out = to_bytes(flood, strip=False)
    written = PILImage.open(io.BytesIO(out)).getexif()
    assert dict(written) == {0x0112: 6}  # only the orientation, as for unreadable EXIF
    assert any("EXIF is not kept" in r.getMessage() for r in caplog.records)


def test_a_flood_of_gif_sub_blocks_is_refused() -> None:
    # One comment of 1-byte sub-blocks: Pillow keeps each as its own object.
    fits = crafted.gif_comment_flood(survey.GIF_BLOCKS_BASE - 10)
    assert thumbnail(fits, 2, 2)[1].width == 2
    flood = crafted.gif_comment_flood(survey.GIF_BLOCKS_BASE + 5000)
    for op in (lambda: info(flood), lambda: thumbnail(flood, 2, 2)):
        with pytest.raises(TooComplex):
            op()
    # Sub-blocks of 63 bytes (encoders write 255) are allowed however many there are.
    long = crafted.gif_comment_flood(2 * survey.GIF_BLOCKS_BASE, size=63)
    assert survey.survey(long, ("gif",), max_pixels=10**6).frames == 1


@pytest.mark.parametrize("bits", [8, 4])
def test_rle_bmp_pixels_are_charged_eight_times(bits: int) -> None:
    # Pillow decodes RLE in Python: a row padded after one pixel costs a loop step per
    # pixel (a 29 KB RLE8 BMP of 7000x7000 took seconds).
    data = crafted.bmp_rle(300, 200, bits=bits)
    charged = 300 * 200 * survey.RLE_WEIGHT
    assert thumbnail(data, 30, 20, max_pixels=charged)[1].width == 30
    for op in (
        lambda: info(data, max_pixels=charged - 1),
        lambda: thumbnail(data, 30, 20, max_pixels=charged - 1),
    ):
        with pytest.raises(TooComplex):
            op()
    # An uncompressed BMP of the same size is charged its pixels.
    plain = encode(PILImage.new("P", (300, 200)), "BMP")
    assert info(plain, max_pixels=300 * 200).width == 300


# --- a corrupt later frame ----------------------------------------------------------------------


def gif_cut_in_last_frame() -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [PILImage.new("RGB", (30, 20), c) for c in colours]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40)
    last = data.rfind(b"\x2c\x00\x00")
    return data[: last + 12]  # the third frame's descriptor, then one byte of its data


def test_frame_zero_is_usable_when_a_later_frame_is_corrupt() -> None:
    data = gif_cut_in_last_frame()
    assert info(data).frames == 3
    image = from_bytes(data)
    assert image.frames == 3
    assert thumbnail(data, 10, 10, frames="first")[1].frames == 1
    assert thumbnail(image, 10, 10, frames="first")[1].frames == 1


def test_all_frames_keep_those_before_a_corrupt_one_and_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = gif_cut_in_last_frame()
    with caplog.at_level(logging.WARNING, logger="mirage"):
        out, result = thumbnail(data, 10, 10)
    assert result.frames == 2
    assert PILImage.open(io.BytesIO(out)).n_frames == 2
    assert any("frame 3 of 3" in r.getMessage() for r in caplog.records)


# --- budgets decided before the work ------------------------------------------------------------


@pytest.mark.parametrize("degrees", [1, 30, 45, 89.5, 90, 135, 180, 200, 271, 359.9, -45])
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (100, 41), (64, 64)])
def test_the_rotated_size_is_known_before_rotating(size: tuple[int, int], degrees: float) -> None:
    from mirage.image import _rotated_size, rotate

    image = from_bytes(encode(gradient(size), "PNG"))
    result = rotate(image, degrees)
    assert _rotated_size(size, degrees % 360) == (result.width, result.height)


def test_a_rotation_over_the_budget_is_refused_before_any_work(
    monkeypatch: pytest.MonkeyPatch, pixel_loads: list[str]
) -> None:
    from mirage.image import rotate

    image = from_bytes(encode(gradient((1000, 1000)), "PNG"))
    rotations: list[float] = []
    original = PILImage.Image.rotate

    def spy(self, angle, *args, **kwargs):  # type: ignore[no-untyped-def]
        rotations.append(angle)
        return original(self, angle, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "rotate", spy)
    with pytest.raises(TooManyPixels):
        rotate(image, 45, max_pixels=1_500_000)  # 1415 x 1415 = 2.0 MP
    assert rotations == [] and "decoder" not in pixel_loads
    assert rotate(image, 90, max_pixels=1_000_000).width == 1000


# --- deadlines ----------------------------------------------------------------------------------


def test_no_deadline_means_no_limit() -> None:
    from mirage import deadline

    deadline.check()
    with deadline.applied(None):
        deadline.check()
    with deadline.applied("infinity"):
        deadline.check()


def test_a_passed_deadline_stops_the_call_before_decoding(
    monkeypatch: pytest.MonkeyPatch, pixel_loads: list[str]
) -> None:
    from mirage import deadline

    data = encode(gradient((64, 64)), "PNG")
    clock = [1000.0]
    monkeypatch.setattr(deadline.time, "monotonic", lambda: clock[0])
    with deadline.applied(50):
        clock[0] += 0.049
        assert thumbnail(data, 8, 8)[1].width == 8
        clock[0] += 0.002
        with pytest.raises(deadline.Timeout) as raised:
            thumbnail(data, 8, 8)
    assert raised.value.reason == "timeout"
    # Leaving the block restores no deadline.
    assert thumbnail(data, 8, 8)[1].width == 8


def test_a_call_whose_caller_died_stops_between_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    from mirage import deadline

    blocks = [gif_frame_block(PILImage.new("RGB", (16, 16), (i * 20, 0, 0))) for i in range(10)]
    data = gif_of((16, 16), *blocks)
    checks = []

    def alive() -> bool:  # the caller exits while the third frame decodes
        checks.append(1)
        return len(checks) <= 4

    seen = seeks(monkeypatch, GifImagePlugin.GifImageFile)
    with deadline.applied(None, alive=alive), pytest.raises(deadline.Timeout):
        thumbnail(data, 8, 8)
    assert max(seen) < 9  # stopped before the last frame


def test_each_thread_has_its_own_deadline() -> None:
    import threading

    from mirage import deadline

    results: list[str] = []

    def other() -> None:
        try:
            deadline.check()
            results.append("free")
        except deadline.Timeout:
            results.append("stopped")

    with deadline.applied(None, alive=lambda: False):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        with pytest.raises(deadline.Timeout):
            deadline.check()
    assert results == ["free"]


def test_the_service_answers_timeout_for_a_call_nobody_waits_for() -> None:
    from mirage.service import Service

    data = encode(gradient((64, 64)), "PNG")
    args = {"max_pixels": 10**6, "allowed_formats": ("png",), "width": 8, "height": 8}
    service = Service()
    assert service.call("thumbnail", data, args).kind == "ok"
    reply = service.call("thumbnail", data, args, alive=lambda: False)
    assert (reply.kind, reply.reason) == ("error", "timeout")
    assert service.call("thumbnail", data, {**args, "timeout": 60_000}).kind == "ok"


def test_an_apng_reports_the_frames_it_holds_not_those_it_claims() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [PILImage.new("RGB", (8, 8), c) for c in colours]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=40)
    assert info(data).frames == PILImage.open(io.BytesIO(data)).n_frames == 3
    at = data.index(b"acTL") + 4
    body = struct.pack(">I", 1_000_000) + data[at + 4 : at + 8]  # frame count, plays
    crc = struct.pack(">I", zlib.crc32(b"acTL" + body))
    claims = data[:at] + body + crc + data[at + 12 :]
    assert info(claims).frames == 3
    assert thumbnail(claims, 4, 4)[1].frames == 3


def test_scans_are_counted_the_same_in_a_borrowed_buffer() -> None:
    # A borrowed source (the NIF lends large binaries as views) is counted in steps of
    # 1 MiB: a marker across a step's end counts once.
    step = 1 << 20
    # Markers at the start, across the first step's end (FF at step - 1), at the end.
    data = b"\xff\xda" + b"\x00" * (step - 3) + b"\xff\xda" + b"\x00" * 10 + b"\xff\xda"
    assert data[step - 1 : step + 1] == b"\xff\xda"
    assert survey._count(data, b"\xff\xda", 0) == 3
    assert survey._count(memoryview(data), b"\xff\xda", 0) == 3
    assert survey._count(memoryview(data), b"\xff\xda", 1) == 2
    jpeg = with_extra_scans(progressive_jpeg(), 300)
    found = survey.survey(memoryview(jpeg), ("jpg",), max_pixels=10**6, max_scans=10**4)
    assert found.scans == jpeg.count(b"\xff\xda")


def corpus_gifs() -> list[object]:
    from tests.conftest import CORPUS, corpus_params

    paths = sorted(CORPUS.glob("**/*.gif")) if CORPUS.is_dir() else []
    return corpus_params(paths, lambda p: p.name)  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("path", corpus_gifs())
def test_gif_frames_and_canvases_agree_with_pillow(path) -> None:  # type: ignore[no-untyped-def]
    # The survey predicts, from the blocks alone, what Pillow's seeking will do: the
    # same frames and canvases, as far as Pillow gets through a broken file.
    data = path.read_bytes()
    found = survey.survey(data, ("gif",), max_pixels=10**12)
    areas: list[int] = []
    complete = True
    try:
        im = PILImage.open(io.BytesIO(data))
        for index in range(im.n_frames):
            im.seek(index)
            areas.append(im.size[0] * im.size[1])
    except Exception:  # noqa: BLE001 - a broken file: compare what Pillow reached
        complete = False
    canvases = found.canvases or ()  # none: no image block at all
    if complete:
        assert canvases == tuple(areas)
    else:
        assert canvases[: len(areas)] == tuple(areas)


def corpus_tiffs() -> list[object]:
    from tests.conftest import CORPUS, corpus_params

    paths = sorted(p for ext in ("tif", "tiff") for p in CORPUS.glob(f"**/*.{ext}"))
    return corpus_params(paths if CORPUS.is_dir() else [], lambda p: p.name)  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("path", corpus_tiffs())
def test_tiff_pages_agree_with_pillow(path) -> None:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    found = survey.survey(data, ("tiff",), max_pixels=10**12)
    try:
        pages = PILImage.open(io.BytesIO(data)).n_frames
    except Exception:  # noqa: BLE001 - Pillow refuses the file: the header read fails anyway
        return
    assert (found.frames or 1) == pages
