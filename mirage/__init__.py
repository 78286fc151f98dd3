"""Mirage: image decoding, resizing and encoding on Pillow.

The pure-Python core lives in :mod:`mirage.image`; the BEAM transports (the NIF in
``c_src/``, and later the port and node programs) are thin layers over it.
"""

from __future__ import annotations

from mirage.errors import REASONS, MirageError
from mirage.image import DEFAULT_MAX_PIXELS, Image, from_bytes, resize

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "REASONS",
    "Image",
    "MirageError",
    "from_bytes",
    "resize",
]
