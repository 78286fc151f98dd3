"""mirage.formats: Mirage's format names, Pillow's names, and the decode allowlist."""

from __future__ import annotations

import re

import pytest
from PIL import Image as PILImage

from mirage.errors import UnsupportedImageFormat
from mirage.formats import DEFAULT_ALLOWED, FORMATS, FROM_PILLOW, PILLOW_NAME
from mirage.image import from_bytes
from tests.conftest import REPO_ROOT, encode, gradient, open_bytes

# Formats Pillow reads (some by shelling out) that must never reach a decoder.
NOT_ALLOWED = ("EPS", "PDF", "PSD", "ICO", "PCX", "TGA", "PPM", "SGI", "DDS", "QOI")


def test_formats_are_unique_and_fixed() -> None:
    # The NIF reports a format as an index into FORMATS, so its order is a contract.
    assert FORMATS == ("jpg", "png", "gif", "webp", "bmp", "tiff")
    assert len(set(FORMATS)) == len(FORMATS)


def test_every_format_has_a_pillow_name() -> None:
    assert set(PILLOW_NAME) == set(FORMATS)
    assert len(set(PILLOW_NAME.values())) == len(PILLOW_NAME)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pillow_name_maps_back(fmt: str) -> None:
    assert FROM_PILLOW[PILLOW_NAME[fmt]] == fmt


def test_mpo_reads_as_jpg() -> None:
    # Multi-picture JPEGs (many phone cameras) are JPEGs to Mirage.
    assert FROM_PILLOW["MPO"] == "jpg"
    assert set(FROM_PILLOW) == set(PILLOW_NAME.values()) | {"MPO"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_pillow_can_open_and_save_each_format(fmt: str) -> None:
    # Importing mirage.formats must have registered every plugin it names.
    name = PILLOW_NAME[fmt]
    assert name in PILImage.OPEN
    assert name in PILImage.SAVE


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_round_trips_through_pillow(fmt: str) -> None:
    # Bytes saved under PILLOW_NAME are reported by Pillow under a name FROM_PILLOW knows.
    data = encode(gradient((16, 12)), PILLOW_NAME[fmt])
    assert FROM_PILLOW[open_bytes(data).format] == fmt
    assert from_bytes(data).format == fmt


def test_default_allowlist_is_within_formats() -> None:
    assert set(DEFAULT_ALLOWED) <= set(FORMATS)
    assert len(set(DEFAULT_ALLOWED)) == len(DEFAULT_ALLOWED)


@pytest.mark.parametrize("name", NOT_ALLOWED)
def test_default_allowlist_excludes_risky_formats(name: str) -> None:
    assert name not in {PILLOW_NAME[f] for f in DEFAULT_ALLOWED}
    assert name.lower() not in DEFAULT_ALLOWED


@pytest.mark.parametrize("name", ["ICO", "PCX", "TGA", "PPM", "SGI", "QOI"])
def test_formats_pillow_reads_but_mirage_does_not_are_refused(name: str) -> None:
    # Valid files Pillow itself would open must still be refused, not just unknown bytes.
    data = encode(gradient((16, 16)), name)
    assert open_bytes(data).format is not None
    with pytest.raises(UnsupportedImageFormat):
        from_bytes(data)


def test_formats_match_elixir_format_type() -> None:
    source = REPO_ROOT / "lib" / "mirage.ex"
    if not source.is_file():
        pytest.skip("lib/mirage.ex not present (Python-only install)")
    match = re.search(r"@type format ::([^\n]*)", source.read_text())
    assert match, "no @type format in mirage.ex"
    assert tuple(re.findall(r":(\w+)", match.group(1))) == FORMATS
