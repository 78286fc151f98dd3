"""Shrink-on-load for WebP thumbnails, through the libwebp that Pillow already loaded.

Pillow decodes every WebP at full size (through libwebp's animation decoder, into
RGBA, then to RGB). libwebp itself can scale while it decodes, row by row, so the
full-size picture never exists, and can filter on a second thread; libvips loads
WebP thumbnails this way. Pillow does not expose those options, so this module calls
``WebPDecode`` with ctypes on the very library Pillow's ``_webp`` module is linked
against (bundled or system, it is the one in use).

Only still, opaque images take this path, and only when libwebp is found and speaks
the decoder ABI declared below; anything else, and any decoding failure, returns
``None`` so the caller decodes with Pillow (which then reports the failure with
Mirage's usual reason).
"""

from __future__ import annotations

import ctypes
import math
import re
import threading
from ctypes import POINTER, Structure, Union, c_char_p, c_int, c_size_t, c_uint32, c_void_p

from PIL import Image as PILImage

# The decoder structs of libwebp's decode.h (ABI 2.x, unchanged since libwebp 0.5).
_ABI = 0x0209
_MODE_RGB = 0
_MIN_VERSION = 0x010000  # 1.0.0


class _Features(Structure):
    _fields_ = [
        ("width", c_int),
        ("height", c_int),
        ("has_alpha", c_int),
        ("has_animation", c_int),
        ("format", c_int),
        ("pad", c_uint32 * 5),
    ]


class _RGBA(Structure):
    _fields_ = [("rgba", c_void_p), ("stride", c_int), ("size", c_size_t)]


class _YUVA(Structure):
    _fields_ = [
        *((name, c_void_p) for name in ("y", "u", "v", "a")),
        *((name, c_int) for name in ("y_stride", "u_stride", "v_stride", "a_stride")),
        *((name, c_size_t) for name in ("y_size", "u_size", "v_size", "a_size")),
    ]


class _Planes(Union):
    _fields_ = [("RGBA", _RGBA), ("YUVA", _YUVA)]


class _DecBuffer(Structure):
    _fields_ = [
        ("colorspace", c_int),
        ("width", c_int),
        ("height", c_int),
        ("is_external_memory", c_int),
        ("u", _Planes),
        ("pad", c_uint32 * 4),
        ("private_memory", c_void_p),
    ]


_OPTION_NAMES = (
    "bypass_filtering",
    "no_fancy_upsampling",
    "use_cropping",
    "crop_left",
    "crop_top",
    "crop_width",
    "crop_height",
    "use_scaling",
    "scaled_width",
    "scaled_height",
    "use_threads",
    "dithering_strength",
    "flip",
    "alpha_dithering_strength",
)


class _Options(Structure):
    _fields_ = [*((name, c_int) for name in _OPTION_NAMES), ("pad", c_uint32 * 5)]


class _Config(Structure):
    _fields_ = [("input", _Features), ("output", _DecBuffer), ("options", _Options)]


_lib: ctypes.CDLL | None = None
_loaded = False
_load_lock = threading.Lock()


def _library() -> ctypes.CDLL | None:
    global _lib, _loaded
    with _load_lock:
        if not _loaded:
            _loaded = True
            _lib = _find()
        return _lib


def _find() -> ctypes.CDLL | None:
    try:
        from PIL import _webp
    except ImportError:
        return None
    # The extension's own handle first: a symbol lookup through it searches the
    # libraries it was linked against. /proc/self/maps names the libwebp file in
    # use where that fails (and not at all when the file was replaced meanwhile).
    candidates = [getattr(_webp, "__file__", None)]
    try:
        with open("/proc/self/maps") as maps:
            found = re.findall(r"(/\S*/libwebp[-.][^/\s]*)$", maps.read(), re.MULTILINE)
        candidates += sorted(set(found))
    except OSError:
        pass
    for path in candidates:
        if path is not None and (lib := _usable(path)) is not None:
            return lib
    return None


def _usable(path: str) -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(path)
        lib.WebPGetDecoderVersion.restype = c_int
        if lib.WebPGetDecoderVersion() < _MIN_VERSION:
            return None
        lib.WebPInitDecoderConfigInternal.argtypes = [POINTER(_Config), c_int]
        lib.WebPGetFeaturesInternal.argtypes = [c_char_p, c_size_t, POINTER(_Features), c_int]
        lib.WebPDecode.argtypes = [c_char_p, c_size_t, POINTER(_Config)]
        config = _Config()
        if not lib.WebPInitDecoderConfigInternal(ctypes.byref(config), _ABI):
            return None
        return lib
    except (OSError, AttributeError):
        return None


def decode_scaled(
    data: bytes | memoryview, size: tuple[int, int], request: tuple[int, int]
) -> tuple[PILImage.Image, tuple[float, float]] | None:
    """The still, opaque WebP ``data`` (``size`` as its header says) decoded at the
    smallest uniform scale that is at least ``request`` on both axes, with the (x, y)
    scale (libwebp maps the whole picture onto the output, so each side's scale is
    its own output length over its stored length).

    ``None`` when that is not smaller than the image, when libwebp is not usable, or
    when the data is not a still opaque WebP or fails to decode.
    """
    width, height = size
    scale = max(request[0] / width, request[1] / height)
    if scale >= 1:
        return None
    lib = _library()
    if lib is None:
        return None
    source = data if isinstance(data, bytes) else bytes(data)
    config = _Config()
    if not lib.WebPInitDecoderConfigInternal(ctypes.byref(config), _ABI):
        return None
    if lib.WebPGetFeaturesInternal(source, len(source), ctypes.byref(config.input), _ABI) != 0:
        return None
    features = config.input
    if features.has_alpha or features.has_animation or (features.width, features.height) != size:
        return None
    out_w = min(width, math.ceil(width * scale))
    out_h = min(height, math.ceil(height * scale))
    options = config.options
    options.use_scaling, options.scaled_width, options.scaled_height = 1, out_w, out_h
    options.use_threads = 1
    stride = out_w * 3
    pixels = bytearray(stride * out_h)
    target = (ctypes.c_char * len(pixels)).from_buffer(pixels)
    output = config.output
    output.colorspace, output.is_external_memory = _MODE_RGB, 1
    output.u.RGBA.rgba = ctypes.addressof(target)
    output.u.RGBA.stride, output.u.RGBA.size = stride, len(pixels)
    if lib.WebPDecode(source, len(source), ctypes.byref(config)) != 0:
        return None
    im = PILImage.frombuffer("RGB", (out_w, out_h), pixels, "raw", "RGB", stride, 1)
    return im, (out_w / width, out_h / height)
