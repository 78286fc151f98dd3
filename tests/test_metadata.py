"""mirage.metadata: EXIF orientation, the source's EXIF, PNG chunks, output EXIF."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image as PILImage

from mirage import codec, metadata
from tests.conftest import encode, exif_bytes


def _opened(data: bytes) -> PILImage.Image:
    return codec.open_image(data)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_of_a_jpeg(orientation: int) -> None:
    data = encode(PILImage.new("RGB", (8, 4)), "JPEG", exif=exif_bytes(orientation))
    im = _opened(data)
    assert metadata.orientation(im, metadata.source_exif(im, data)) == orientation


@pytest.mark.parametrize("bogus", [0, 9, 65535])
def test_out_of_range_orientation_reads_as_upright(bogus: int) -> None:
    data = encode(PILImage.new("RGB", (8, 4)), "JPEG", exif=exif_bytes(bogus))
    im = _opened(data)
    assert metadata.orientation(im, metadata.source_exif(im, data)) == 1


def test_png_exif_is_found_without_decoding(pixel_loads: list[str]) -> None:
    data = encode(PILImage.new("RGB", (8, 4)), "PNG", exif=exif_bytes(6))
    pixel_loads.clear()
    im = _opened(data)
    found = metadata.source_exif(im, data)
    assert found is not None
    assert metadata.orientation(im, found) == 6
    assert pixel_loads == []  # no pixels were decoded to find it


def test_png_chunk_walks_chunks_and_stops_at_iend() -> None:
    signature = b"\x89PNG\r\n\x1a\n"
    body = _chunk(b"tEXt", b"a\x00b") + _chunk(b"IEND", b"") + _chunk(b"eXIf", b"late")
    assert metadata.png_chunk(signature + body, b"tEXt") == b"a\x00b"
    assert metadata.png_chunk(memoryview(signature + body), b"tEXt") == b"a\x00b"
    assert metadata.png_chunk(signature + body, b"eXIf") is None  # after IEND
    assert metadata.png_chunk(signature + body[:5], b"tEXt") is None  # cut short


def test_broken_exif_reads_as_absent() -> None:
    im = _opened(encode(PILImage.new("RGB", (8, 4)), "PNG"))
    assert metadata.orientation(im, b"not exif at all") == 1


def test_exif_for_sets_or_clears_the_orientation() -> None:
    assert metadata.exif_for(None, 1) is None
    written = PILImage.Exif()
    written.load(metadata.exif_for(None, 6) or b"")
    assert written[metadata.ORIENTATION] == 6
    kept = PILImage.Exif()
    kept.load(metadata.exif_for(exif_bytes(3, Make="Acme"), 1) or b"")
    assert metadata.ORIENTATION not in kept and kept[0x010F] == "Acme"
    # Unreadable source EXIF: only the orientation is written.
    fresh = PILImage.Exif()
    fresh.load(metadata.exif_for(b"garbage", 8) or b"")
    assert dict(fresh) == {metadata.ORIENTATION: 8}


def test_tiff_metadata_tags_are_kept_as_exif() -> None:
    im = PILImage.new("RGB", (8, 4))
    buffer = io.BytesIO()
    im.save(buffer, "TIFF", exif=exif_bytes(1, Make="Acme", Model="One"))
    data = buffer.getvalue()
    found = metadata.source_exif(_opened(data), data)
    assert found is not None
    exif = PILImage.Exif()
    exif.load(found)
    assert (exif[0x010F], exif[0x0110]) == ("Acme", "One")


def test_a_bug_in_metadata_code_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow failing to read metadata makes it absent; Mirage's own bug must raise.
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 4)).save(buffer, "TIFF", exif=exif_bytes(1, Make="Acme"))
    data = buffer.getvalue()
    im = _opened(data)
    monkeypatch.setattr(metadata, "_TIFF_METADATA_TAGS", None)  # a broken table of ours
    with pytest.raises(TypeError):
        metadata.source_exif(im, data)


def test_pillow_failing_on_exif_reads_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(PILImage.new("RGB", (8, 4)), "PNG", exif=exif_bytes(6, Make="Acme"))
    im = _opened(data)
    found = metadata.source_exif(im, data)

    def pillow_fails(*_: object) -> None:
        raise SyntaxError("not a TIFF file")

    monkeypatch.setattr(PILImage.Exif, "load", pillow_fails)
    assert metadata.orientation(im, found) == 1
    out = metadata.exif_for(found, 3)
    monkeypatch.undo()
    written = PILImage.Exif()
    written.load(out or b"")
    assert dict(written) == {metadata.ORIENTATION: 3}  # the source's Make is lost
