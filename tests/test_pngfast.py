"""mirage/pngfast.py: the same pixels as Pillow's PNG decoder, or no answer at all."""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from mirage import image, pngfast
from mirage.errors import MirageError
from tests.conftest import BENCH, CORPUS, REPO_ROOT, gradient

pytestmark = pytest.mark.skipif(
    not pngfast.available(),
    reason="isal not installed or mirage/_png_unfilter.so not built (c_src/build.py png)",
)

PNG_FILES = sorted(CORPUS.glob("**/*.png")) + sorted(BENCH.glob("*.png"))


def _pillow(data: bytes) -> PILImage.Image | None:
    try:
        im = PILImage.open(io.BytesIO(data))
        im.load()
    except (OSError, SyntaxError, ValueError):
        return None
    return im


def _png(im: PILImage.Image, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG", **options)
    return out.getvalue()


def _noise(size: tuple[int, int]) -> PILImage.Image:
    # Incompressible, so a cut or damaged stream cannot end early by chance.
    data = random.Random(12).randbytes(size[0] * size[1] * 4)
    return PILImage.frombytes("RGBA", size, data)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_idat(data: bytes, stream: bytes) -> bytes:
    """``data`` with its IDAT chunks replaced by one holding ``stream``."""
    pos, head, tail = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        piece = data[pos : pos + 12 + length]
        if kind == b"IDAT":
            head = head or data[:pos]
        elif head:
            tail += piece
        pos += 12 + length
    return head + _chunk(b"IDAT", stream) + tail


def _inflated(data: bytes) -> bytes:
    pos, parts = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        if data[pos + 4 : pos + 8] == b"IDAT":
            parts.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return zlib.decompress(b"".join(parts))


@pytest.mark.skipif(not PNG_FILES, reason="../shared corpus not present (plain install)")
def test_identical_to_pillow_on_every_corpus_png() -> None:
    taken = 0
    for path in PNG_FILES:
        data = path.read_bytes()
        reference = _pillow(data)
        if reference is None:
            continue  # Mirage opens with Pillow first: a file it rejects never gets here
        fast = pngfast.decode(data, reference.size)
        if fast is None:
            continue
        taken += 1
        assert fast.mode == reference.mode, path
        assert fast.tobytes() == reference.tobytes(), path
    assert taken >= 20  # plain 8-bit files are common in the corpus and pngsuite


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
def test_every_filter_and_mode(mode: str, filter_type: int) -> None:
    # Every row filtered by hand with one filter type (Pillow's writer chooses its own).
    im = gradient((37, 23)).convert(mode)
    data = _png(im)
    pixels = im.tobytes()
    width = len(mode) * 37
    plain = [pixels[y * width : (y + 1) * width] for y in range(23)]
    bpp = len(mode)
    out = bytearray()
    for y, row in enumerate(plain):
        prev = plain[y - 1] if y else bytearray(width)
        out.append(filter_type)
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            predictor = [0, a, b, (a + b) // 2, _paeth(a, b, c)][filter_type]
            out.append((value - predictor) & 0xFF)
    filtered = _with_idat(data, zlib.compress(bytes(out)))
    fast = pngfast.decode(filtered, im.size)
    assert fast is not None
    assert fast.tobytes() == im.tobytes()
    assert fast.tobytes() == _pillow(filtered).tobytes()  # type: ignore[union-attr]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


@pytest.mark.parametrize(
    "im",
    [
        gradient((20, 20)).convert("P"),
        gradient((20, 20)).convert("1"),
        gradient((20, 20)).convert("I;16"),
    ],
    ids=["palette", "1-bit", "16-bit"],
)
def test_other_kinds_are_left_to_pillow(im: PILImage.Image) -> None:
    assert pngfast.decode(_png(im), im.size) is None


def test_interlaced_and_transparency_are_left_to_pillow() -> None:
    im = gradient((20, 20))
    data = _png(im)
    ihdr = data[12:16] + data[16:28] + b"\x01"  # interlace method 1 (Adam7)
    interlaced = data[:8] + _chunk(b"IHDR", ihdr[4:]) + data[33:]
    assert pngfast.decode(interlaced, im.size) is None
    assert pngfast.decode(_png(im, transparency=(0, 0, 0)), im.size) is None


def test_irregular_streams_are_left_to_pillow() -> None:
    im = _noise((30, 30))
    data = _png(im)
    rows = _inflated(data)
    for stream in (
        zlib.compress(rows)[:-40],  # truncated
        zlib.compress(rows[:-50]),  # short
        zlib.compress(rows + b"\0" * 200),  # long
        zlib.compress(rows)[:200] + b"\xff" * 300,  # corrupt
        zlib.compress(b"\x07" + rows[1:]),  # unknown filter type
    ):
        assert pngfast.decode(_with_idat(data, stream), im.size) is None
    assert pngfast.decode(data, (31, 30)) is None  # not the size the header gave
    assert pngfast.decode(data[:-30], im.size) is None  # IEND missing


def _reason(data: bytes) -> str:
    with pytest.raises(MirageError) as caught:
        image.thumbnail(data, 16, 16)
    return caught.value.reason


def test_corrupt_idat_keeps_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png(_noise((64, 64)))
    stream = zlib.compress(_inflated(data))
    corrupt = _with_idat(data, stream[:100] + bytes(len(stream) - 100))
    truncated = _with_idat(data, stream[: len(stream) // 2])
    reasons = [_reason(corrupt), _reason(truncated)]
    monkeypatch.setattr(pngfast, "decode", lambda source, size: None)
    assert reasons == [_reason(corrupt), _reason(truncated)]
    assert set(reasons) <= {"decode_failed", "truncated_image"}


def test_thumbnail_uses_it_and_matches_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    path = BENCH / "photo_rgba_1000.png"
    data = path.read_bytes() if path.is_file() else _png(gradient((300, 200)).convert("RGBA"))
    calls: list[int] = []
    decode = pngfast.decode

    def counted(source: bytes | memoryview, size: tuple[int, int]) -> PILImage.Image | None:
        result = decode(source, size)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(pngfast, "decode", counted)
    fast, _ = image.thumbnail(data, 64, 64)
    monkeypatch.setattr(pngfast, "decode", lambda source, size: None)
    slow, _ = image.thumbnail(data, 64, 64)
    assert calls == [True]
    assert _pillow(fast).tobytes() == _pillow(slow).tobytes()  # type: ignore[union-attr]


def test_library_path_is_inside_the_package() -> None:
    # Staging copies the package directory, so the library must live in it.
    assert pngfast._LIBRARY.parent == Path(pngfast.__file__).resolve().parent


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_encode_round_trips(mode: str) -> None:
    for im in (_noise((41, 17)).convert(mode), gradient((64, 33)).convert(mode)):
        encoded = pngfast.encode(im)
        assert encoded is not None
        with encoded:
            data = encoded.to_bytes()
        decoded = _pillow(data)
        assert decoded is not None
        assert decoded.mode == mode
        assert decoded.tobytes() == im.tobytes()
        assert pngfast.decode(data, im.size) is not None  # plain, by its own rules


def test_encode_leaves_other_modes_to_pillow() -> None:
    assert pngfast.encode(gradient((20, 20)).convert("P")) is None
    assert pngfast.encode(gradient((20, 20)).convert("I;16")) is None


def test_thumbnail_keeps_a_colour_profile_through_pillow() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _png(gradient((300, 200)), icc_profile=profile)
    out, _ = image.thumbnail(data, 64, 64)
    assert _pillow(out).info.get("icc_profile") == profile  # type: ignore[union-attr]
    plain, _ = image.thumbnail(_png(gradient((300, 200))), 64, 64)
    assert _chunks(plain) == [b"IHDR", b"IDAT", b"IEND"]


def _chunks(data: bytes) -> list[bytes]:
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


@pytest.mark.parametrize("band", [997, 4096, 1 << 18])
def test_bands_on_worker_threads_give_the_same_pixels(
    band: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small bands: many hand-overs between inflating and unfiltering threads, with
    # band edges inside rows; each row's filter reads the row above across a band edge.
    monkeypatch.setattr(pngfast, "_BAND", band)
    monkeypatch.setattr(pngfast, "_INPUT", 513)
    for im in (_noise((301, 77)), gradient((256, 190)).convert("RGB")):
        data = _png(im)
        fast = pngfast.decode(data, im.size)
        assert fast is not None
        assert fast.tobytes() == _pillow(data).tobytes()  # type: ignore[union-attr]
        cut = _with_idat(data, zlib.compress(_inflated(data))[:-300])
        assert pngfast.decode(cut, im.size) is None


# Run in a fresh interpreter, where the library is not loaded yet. The first call
# loads it; while that load is held open, a second call arrives on another thread.
# Both must take the same path and give the same bytes as a call made afterwards.
_FIRST_USE = """
import hashlib, io, json, threading
import cffi
from PIL import Image
from mirage.etf import Atom
from mirage.service import Service

service = Service()
file = io.BytesIO()
Image.linear_gradient("L").convert("RGB").save(file, "PNG")
source = file.getvalue()
args = {"width": 48, "height": 40, "max_pixels": 10**6, "allowed_formats": [Atom("png")]}
loading, second_done = threading.Event(), threading.Event()
dlopen = cffi.FFI.dlopen

def held_open(self, *a, **k):
    loading.set()
    second_done.wait(0.5)  # the second call runs meanwhile (or waits for the load)
    return dlopen(self, *a, **k)

cffi.FFI.dlopen = held_open
out = {}

def call(name):
    reply = service.call("thumbnail", source, args)
    with reply.data as data:
        out[name] = hashlib.sha256(data.to_bytes()).hexdigest()

def second():
    call("second")
    second_done.set()

first = threading.Thread(target=call, args=("first",))
first.start()
assert loading.wait(30), "the first call never loaded the library"
other = threading.Thread(target=second)
other.start()
first.join()
other.join()
call("after")
print(json.dumps(out))
"""


def test_first_use_from_two_threads_gives_the_same_bytes() -> None:
    # Seen in the VM: a call made while another thread was loading the library found
    # it "loaded" but absent, wrote its PNG with Pillow (other bytes), and the same
    # call gave pngfast's bytes from then on.
    run = subprocess.run(
        [sys.executable, "-c", _FIRST_USE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["first"] == out["after"]
    assert out["second"] == out["after"]
