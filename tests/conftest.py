"""Shared paths, image builders and the corpus manifest for the mirage tests.

The conformance corpus lives beside the repository (``../shared``), not in it, so every
test that needs it skips with one clear reason when it is absent (a plain install).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import ExifTags, ImageChops, ImageFile, ImageOps, ImageStat
from PIL import Image as PILImage

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
MANIFEST = CORPUS / "MANIFEST.tsv"
SAMPLES = REPO_ROOT / "samples"

NO_CORPUS = "../shared corpus not present (plain install)"
requires_corpus = pytest.mark.skipif(not MANIFEST.is_file(), reason=NO_CORPUS)

RGB = tuple[int, int, int]
RED: RGB = (255, 0, 0)
GREEN: RGB = (0, 255, 0)
BLUE: RGB = (0, 0, 255)
WHITE: RGB = (255, 255, 255)


# --- in-memory images -------------------------------------------------------------------


def bands(size: tuple[int, int], colours: Sequence[RGB], *, vertical: bool) -> PILImage.Image:
    """Equal bands of ``colours``: left to right if ``vertical``, else top to bottom.

    A centre crop of such an image keeps only the middle band, so crops are checkable.
    """
    width, height = size
    im = PILImage.new("RGB", size)
    n = len(colours)
    for i, colour in enumerate(colours):
        if vertical:
            box = (width * i // n, 0, width * (i + 1) // n, height)
        else:
            box = (0, height * i // n, width, height * (i + 1) // n)
        im.paste(colour, box)
    return im


def quadrants(size: tuple[int, int]) -> PILImage.Image:
    """Red, green / blue, white quadrants (top-left, top-right / bottom-left, bottom-right)."""
    width, height = size
    im = PILImage.new("RGB", size)
    im.paste(RED, (0, 0, width // 2, height // 2))
    im.paste(GREEN, (width // 2, 0, width, height // 2))
    im.paste(BLUE, (0, height // 2, width // 2, height))
    im.paste(WHITE, (width // 2, height // 2, width, height))
    return im


def gradient(size: tuple[int, int]) -> PILImage.Image:
    """A smooth RGB gradient: compresses like a photo and has no two equal columns."""
    width, height = size
    im = PILImage.new("RGB", size)
    im.putdata(
        [
            (x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), 128)
            for y in range(height)
            for x in range(width)
        ]
    )
    return im


def encode(im: PILImage.Image, pillow_format: str, **options: object) -> bytes:
    """``im`` saved by Pillow as ``pillow_format`` (e.g. "PNG"), as bytes."""
    buffer = io.BytesIO()
    im.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()


def open_bytes(data: bytes) -> PILImage.Image:
    """Pillow's own reading of ``data``, fully loaded (an independent check on output)."""
    im = PILImage.open(io.BytesIO(data))
    im.load()
    return im


def is_close(pixel: Sequence[int], colour: Sequence[int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


# --- the shared corpus --------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestRow:
    file: str
    suite: str
    expected: str
    exercises: str

    @property
    def path(self) -> Path:
        return CORPUS / self.file


def load_manifest() -> list[ManifestRow]:
    """Every row of corpus/MANIFEST.tsv, or nothing when the corpus is absent."""
    if not MANIFEST.is_file():
        return []
    # The file has CRLF line ends; csv with newline="" strips them.
    with MANIFEST.open(newline="", encoding="utf-8") as fh:
        return [
            ManifestRow(r["file"], r["suite"], r["expected"], r["exercises"])
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def corpus_params(items: Iterable[object], ids: Callable[[object], str]) -> list[object]:
    """pytest params for ``items``; one skipped placeholder when the corpus is absent.

    An empty parameter list would hide the reason, so the skip says why.
    """
    params = [pytest.param(item, id=ids(item)) for item in items]
    if params:
        return params
    return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=NO_CORPUS))]


# --- bench photographs, pixel comparison and spies (tests of the imaging API) -------------

BENCH = SHARED / "bench-images"
NO_BENCH = "../shared/bench-images not present (plain install)"
requires_bench = pytest.mark.skipif(not BENCH.is_dir(), reason=NO_BENCH)


def bench_bytes(name: str) -> bytes:
    """A bench photograph's bytes; skips (with the reason) when it is absent."""
    path = BENCH / name
    if not path.is_file():
        pytest.skip(NO_BENCH)
    return path.read_bytes()


def mean_abs_diff(a: PILImage.Image, b: PILImage.Image) -> float:
    """The worst channel's mean absolute difference (0-255) between equal-sized images."""
    assert a.size == b.size, f"sizes differ: {a.size} != {b.size}"
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return max(ImageStat.Stat(diff).mean)


def exif_bytes(orientation: int | None = None, **tags: object) -> bytes:
    """An EXIF block with ``orientation`` and any named base tags (e.g. Make="Acme")."""
    exif = PILImage.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    for name, value in tags.items():
        exif[ExifTags.Base[name]] = value
    return exif.tobytes()


def displayed(data: bytes) -> PILImage.Image:
    """How a viewer shows ``data``: decoded, then turned by its EXIF orientation.

    (Pillow's TIFF reader turns the pixels itself and drops the tag, so this is a
    no-op there and still right.)
    """
    return ImageOps.exif_transpose(open_bytes(data))


@pytest.fixture
def pixel_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pixel decode Pillow starts, whichever plugin and path it takes.

    ``Image.load`` and ``ImageFile.load`` cover the usual path, ``_getdecoder`` catches
    any plugin that decodes tiles without them.
    """
    calls: list[str] = []
    image_load = PILImage.Image.load
    file_load = ImageFile.ImageFile.load
    getdecoder = PILImage._getdecoder

    def spy_image_load(self: PILImage.Image):  # type: ignore[no-untyped-def]
        calls.append(f"Image.load:{type(self).__name__}")
        return image_load(self)

    def spy_file_load(self: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
        calls.append(f"ImageFile.load:{type(self).__name__}")
        return file_load(self)

    def spy_getdecoder(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("decoder")
        return getdecoder(*args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "load", spy_image_load)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_file_load)
    monkeypatch.setattr(PILImage, "_getdecoder", spy_getdecoder)
    return calls


# --- a host's sink ---------------------------------------------------------------------------


@pytest.fixture
def sink_lines() -> Iterator[list[tuple[int, str]]]:
    """Everything a process set up by mirage.host sends to its sink, as (level, text);
    the set-up is undone afterwards."""
    from mirage import host

    lines: list[tuple[int, str]] = []
    setup = host.setup(lambda level, line: lines.append((level, line)))
    try:
        yield lines
    finally:
        setup.undo()


def logged_text(lines: list[tuple[int, str]]) -> str:
    return "\n".join(text for _, text in lines)
