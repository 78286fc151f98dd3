"""Mirage: image decoding, resizing and encoding on Pillow.

The pure-Python core lives in :mod:`mirage.image`; the BEAM transports (the NIF in
``c_src/``, the port and node programs) are thin layers over
:class:`mirage.service.Service` (and :mod:`mirage.server` for terms).
"""

from __future__ import annotations

from mirage.errors import REASONS, MirageError
from mirage.image import (
    DEFAULT_MAX_PIXELS,
    Image,
    Info,
    auto_orient,
    crop,
    flip,
    formats,
    from_bytes,
    info,
    resize,
    rotate,
    thumbnail,
    to_bytes,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "REASONS",
    "Image",
    "Info",
    "MirageError",
    "auto_orient",
    "crop",
    "flip",
    "formats",
    "from_bytes",
    "info",
    "resize",
    "rotate",
    "thumbnail",
    "to_bytes",
]
