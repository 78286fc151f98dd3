"""The shared conformance corpus (../shared/corpus): PngSuite, format quirks, hostile files.

Each file goes through from_bytes and one resize to 32x24, nothing else. Skipped as a
whole when the corpus is absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageChops, ImageStat

from mirage.errors import REASONS, MirageError
from mirage.image import from_bytes, resize
from tests.conftest import CORPUS, ManifestRow, corpus_params, load_manifest, requires_corpus

# Malformed and hostile inputs make Pillow warn (bad APNG, corrupt EXIF, ...); the
# verdict is what we assert, the warnings are expected noise.
pytestmark = [requires_corpus, pytest.mark.filterwarnings("ignore::UserWarning")]

ROWS = load_manifest()
PNGSUITE = [row for row in ROWS if row.suite == "pngsuite"]
OTHERS = [row for row in ROWS if row.suite != "pngsuite"]

# "fail" files that Pillow legitimately accepts would be listed here, each with why.
# Checked against Pillow 13: every "fail" row is refused, so the set is empty.
FAIL_BUT_ACCEPTED: frozenset[str] = frozenset()

TARGET = (32, 24)


def attempt(row: ManifestRow) -> MirageError | None:
    """from_bytes + resize; the MirageError if either refused the file, else None.

    Any other exception propagates and fails the test: that is the crash to catch.
    """
    try:
        out, image = resize(from_bytes(row.path.read_bytes()), *TARGET)
    except MirageError as err:
        assert err.reason in REASONS
        return err
    assert (image.width, image.height) == TARGET
    assert image.byte_size == len(out)
    return None


def by_name(row: object) -> str:
    assert isinstance(row, ManifestRow)
    return Path(row.file).name


def by_path(row: object) -> str:
    assert isinstance(row, ManifestRow)
    return row.file


def test_manifest_lists_every_corpus_file() -> None:
    # A file without a row would silently escape every test below.
    on_disk = {
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file() and p.parts[len(CORPUS.parts)] != "LICENSES" and p.name != "MANIFEST.tsv"
    }
    listed = {row.file for row in ROWS}
    assert on_disk == listed
    assert {row.expected for row in ROWS} <= {
        "ok",
        "fail",
        "ok(frame0)",
        "fail(libspng)",
        "nocrash",
        "?",
    }


# --- PngSuite: exact verdicts ------------------------------------------------------------


@pytest.mark.parametrize("row", corpus_params(PNGSUITE, by_name))
def test_pngsuite(row: ManifestRow) -> None:
    name = Path(row.file).name
    data = row.path.read_bytes()
    if name.startswith("x"):
        # Corrupt by design: refused with a known reason, at header or pixel time.
        with pytest.raises(MirageError) as info:
            resize(from_bytes(data), *TARGET)
        assert info.value.reason in REASONS
        return
    image = from_bytes(data)
    assert image.format == "png"
    # The header size is exactly Pillow's own reading of the file.
    with PILImage.open(row.path) as reference:
        assert (image.width, image.height) == reference.size
    out, resized = resize(image, *TARGET)
    reopened = PILImage.open(io.BytesIO(out))
    assert (reopened.format, reopened.size) == ("PNG", TARGET)
    assert (resized.width, resized.height) == TARGET


def test_pngsuite_corrupt_files_are_the_manifest_failures() -> None:
    if not PNGSUITE:
        pytest.skip("no PngSuite rows")
    # The x-prefix convention and the manifest's verdicts must agree.
    for row in PNGSUITE:
        assert (row.expected == "fail") == Path(row.file).name.startswith("x"), row.file


# --- everything else: no crash, and failures where stated ------------------------------------


@pytest.mark.parametrize("row", corpus_params(OTHERS, by_path))
def test_corpus_file(row: ManifestRow) -> None:
    error = attempt(row)
    if row.expected == "fail" and row.file not in FAIL_BUT_ACCEPTED:
        assert error is not None, f"{row.file} should be refused ({row.exercises})"
    # "ok" and "ok(frame0)" files may still be refused: Pillow cannot read some BMP/TIFF
    # variants and some (.dib) are not on the allowlist. "nocrash", "?" and
    # "fail(libspng)" only promise a clean answer. attempt() already failed on a crash.


# --- EXIF orientation sets: every variant comes out as the same upright picture --------------

ORIENTATION_SETS = {
    "recurser-landscape": ("exif/recurser/Landscape_{}.jpg", range(0, 9), (60, 40)),
    "recurser-portrait": ("exif/recurser/Portrait_{}.jpg", range(0, 9), (40, 60)),
    "pillow-hopper-jpg": ("exif/pillow/hopper_orientation_{}.jpg", range(2, 9), (32, 32)),
    "pillow-hopper-webp": ("exif/pillow/hopper_orientation_{}.webp", range(2, 9), (32, 32)),
    "pillow-g4-tiff": ("exif/pillow/g4_orientation_{}.tif", range(1, 9), (60, 9)),
}


def upright(path: Path, size: tuple[int, int]) -> PILImage.Image:
    out, _ = resize(from_bytes(path.read_bytes()), *size)
    return PILImage.open(io.BytesIO(out)).convert("RGB")


@pytest.mark.parametrize("name", list(ORIENTATION_SETS))
def test_orientation_set_is_upright(name: str) -> None:
    pattern, numbers, size = ORIENTATION_SETS[name]
    paths = [CORPUS / pattern.format(n) for n in numbers]
    reference = upright(paths[0], size)
    for path in paths[1:]:
        diff = ImageStat.Stat(ImageChops.difference(upright(path, size), reference)).mean
        # Identical pictures differ by compression noise only (a few levels).
        assert max(diff) < 8, f"{path.name} is not upright: mean difference {diff}"
