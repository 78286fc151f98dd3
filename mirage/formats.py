"""Image formats Mirage reads and writes, and their names on each side.

:data:`FORMATS` order is the NIF's atom table index; the names are the atoms Elixir
sees (compatible with scrogson/mirage's ``:jpg``, ``:png``, ``:gif``).
"""

from __future__ import annotations

# Importing the plugins registers them with Pillow; only these formats are ever tried.
from PIL import (
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

FORMATS: tuple[str, ...] = ("jpg", "png", "gif", "webp", "bmp", "tiff")

#: Pillow's plugin name for each Mirage format, used to open and to save.
PILLOW_NAME: dict[str, str] = {
    "jpg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WEBP",
    "bmp": "BMP",
    "tiff": "TIFF",
}

#: Pillow's reported ``format`` back to Mirage's name (MPO is a multi-picture JPEG).
FROM_PILLOW: dict[str, str] = {v: k for k, v in PILLOW_NAME.items()} | {"MPO": "jpg"}

#: Formats decoded by default. Formats that shell out (EPS via Ghostscript) or are
#: rarely needed on the web stay off this list.
DEFAULT_ALLOWED: tuple[str, ...] = FORMATS
