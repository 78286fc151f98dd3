"""Image metadata Mirage reads and writes: EXIF orientation, the source's EXIF (also
where Pillow's header parse does not expose it), and the EXIF written to outputs.

Broken metadata never fails an image: what Pillow raises reading it makes it read as
absent. A bug in this module still raises (see :func:`mirage.errors.raised_by_mirage`).
"""

from __future__ import annotations

import logging

from PIL import Image as PILImage

from mirage import survey
from mirage.buffers import Data
from mirage.errors import TooComplex, raised_by_mirage

_log = logging.getLogger("mirage")

#: The EXIF tag holding the orientation (1-8).
ORIENTATION = 0x0112


def orientation(im: PILImage.Image, exif_bytes: bytes | None) -> int:
    """The EXIF orientation of an opened image (1 when absent or unreadable)."""
    try:
        if im.format == "PNG":
            # Pillow's PNG getexif() decodes every pixel to reach an eXIf chunk
            # after the image data; source_exif found the chunk without that.
            if exif_bytes is None:
                return 1
            exif = PILImage.Exif()
            exif.load(exif_bytes)
        else:
            exif = im.getexif()
        value = exif.get(ORIENTATION, 1)
    except Exception as exc:  # broken EXIF must not fail the whole image
        if raised_by_mirage(exc):
            raise
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# TIFF tags that are metadata about the picture (not its layout), kept by strip=False.
_TIFF_METADATA_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x8298)
_EXIF_IFDS = (0x8769, 0x8825)  # the EXIF and GPS sub-directories


def source_exif(im: PILImage.Image, data: Data) -> bytes | None:
    """The source's EXIF as bytes, also where Pillow's header ``info`` lacks it."""
    raw = im.info.get("exif")
    if raw is not None or im.format not in ("PNG", "TIFF"):
        return raw
    try:
        if im.format == "PNG":
            return png_chunk(data, b"eXIf")
        tags = im.getexif()  # the TIFF's own directory: reading it decodes no pixels
        exif = PILImage.Exif()
        for tag in _TIFF_METADATA_TAGS:
            if tag in tags:
                exif[tag] = tags[tag]
        for ifd in _EXIF_IFDS:
            if tags.get_ifd(ifd):
                exif.get_ifd(ifd).update(tags.get_ifd(ifd))
        return exif.tobytes() if len(exif) or any(exif.get_ifd(i) for i in _EXIF_IFDS) else None
    except Exception as exc:  # broken metadata must not fail the image
        if raised_by_mirage(exc):
            raise
        return None


def png_chunk(data: Data, kind: bytes) -> bytes | None:
    """The body of the first PNG chunk of type ``kind`` before IEND, if any."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk = bytes(data[pos + 4 : pos + 8])
        if chunk == kind:
            return bytes(data[pos + 8 : pos + 8 + length])
        if chunk == b"IEND":
            return None
        pos += 12 + length
    return None


def exif_for(source_exif: bytes | None, orientation: int) -> bytes | None:
    """EXIF for the output: the source's (if kept) with the orientation set right."""
    if source_exif is None and orientation == 1:
        return None
    exif = PILImage.Exif()
    if source_exif is not None:
        try:
            # Pillow makes an object of every value when it writes EXIF back: a few MB
            # of rationals would cost seconds. Such EXIF is dropped like unreadable EXIF.
            survey.tiff_metadata(source_exif)
        except TooComplex as exc:
            _log.warning("the source's EXIF is not kept: %s", exc)
            source_exif = None
    if source_exif is not None:
        try:
            exif.load(source_exif)
        except Exception as exc:  # unreadable EXIF: write only the orientation
            if raised_by_mirage(exc):
                raise
            exif = PILImage.Exif()
    if orientation == 1:
        exif.pop(ORIENTATION, None)
    else:
        exif[ORIENTATION] = orientation
    return exif.tobytes()
