"""The operations every transport offers, by name, with one argument shape.

:class:`mirage.service.Service` resolves a request into ``(name, source, args)``:
``source`` is the image the request names (bytes, a held
:class:`~mirage.image.Image`, or ``None``) and ``args`` a map already validated by
Elixir, with ``max_pixels`` and ``allowed_formats`` always present. :func:`run`
answers an :class:`Outcome`. Python re-checks bounds (the pixel budget) as a second
line of defence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mirage import image
from mirage.buffers import Encoded, keep
from mirage.etf import Atom
from mirage.image import Image

Source = bytes | memoryview | Image | None


@dataclass
class Outcome:
    """What an operation produced: encoded bytes, a new held image, a plain term."""

    data: Encoded | None = None
    image: Image | None = None
    term: object = None


def _limits(args: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "max_pixels": args["max_pixels"],
        "allowed_formats": tuple(str(f) for f in args["allowed_formats"]),
        # Absent from older callers: the default limit applies.
        "max_scans": args.get("max_scans", image.DEFAULT_MAX_SCANS),
    }


def _present_options(args: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The named options that are present and not nil, with atoms as plain strings."""
    out = {}
    for name in names:
        if name in args and args[name] is not None:
            value = args[name]
            out[name] = str(value) if isinstance(value, Atom) else value
    return out


_THUMBNAIL_OPTIONS = (
    "fit",
    "filter",
    "upscale",
    "auto_orient",
    "format",
    "quality",
    "strip",
    "frames",
    "threads",
)


def _held(source: Source) -> Image:
    if not isinstance(source, Image):
        raise TypeError(f"operation needs a held image, got {type(source).__name__}")
    return source


def _bytes(source: Source) -> bytes | memoryview:
    if not isinstance(source, (bytes, memoryview)):
        raise TypeError(f"operation needs bytes, got {type(source).__name__}")
    return source


def from_bytes(source: Source, args: Mapping[str, Any]) -> Outcome:
    return Outcome(image=image.from_bytes(_bytes(source), **_limits(args)))


#: The keys of ``info``'s result map. They become atoms on the Elixir side, decoded
#: safely (only atoms that already exist), so Elixir must know each one: adding a
#: key means adding it there too (checked by the tests on both sides).
INFO_KEYS: tuple[str, ...] = (
    "format",
    "width",
    "height",
    "frames",
    "orientation",
    "has_alpha",
    "mode",
)


def info(source: Source, args: Mapping[str, Any]) -> Outcome:
    found = image.info(_bytes(source), **_limits(args))
    term: dict[Atom, object] = {Atom(k): getattr(found, k) for k in INFO_KEYS}
    term[Atom("format")] = Atom(found.format)
    return Outcome(term=term)


def _thumbnail_options(args: Mapping[str, Any]) -> dict[str, Any]:
    options = _present_options(args, *_THUMBNAIL_OPTIONS)
    gravity = args.get("gravity")
    if gravity is not None:
        options["gravity"] = str(gravity) if isinstance(gravity, Atom) else tuple(gravity)
    return {**options, **_limits(args)}


def thumbnail(source: Source, args: Mapping[str, Any]) -> Outcome:
    if not isinstance(source, (bytes, memoryview, Image)):
        raise TypeError(f"thumbnail needs bytes or a held image, got {type(source).__name__}")
    data, result = image.thumbnail(
        source, args["width"], args["height"], output=keep, **_thumbnail_options(args)
    )
    return Outcome(data=data, image=result)


def resize(source: Source, args: Mapping[str, Any]) -> Outcome:
    # Like image.resize: a held image only, never bytes.
    data, result = image.resize(
        _held(source), args["width"], args["height"], output=keep, **_thumbnail_options(args)
    )
    return Outcome(data=data, image=result)


def crop(source: Source, args: Mapping[str, Any]) -> Outcome:
    held = _held(source)
    x, y, w, h = (args[k] for k in ("x", "y", "width", "height"))
    return Outcome(image=image.crop(held, x, y, w, h, max_pixels=args["max_pixels"]))


def rotate(source: Source, args: Mapping[str, Any]) -> Outcome:
    background = args.get("background")
    rotated = image.rotate(
        _held(source),
        args["degrees"],
        background=tuple(background) if background is not None else None,
        max_pixels=args["max_pixels"],
    )
    return Outcome(image=rotated)


_DIRECTIONS: dict[str, Literal["horizontal", "vertical"]] = {
    "horizontal": "horizontal",
    "vertical": "vertical",
}


def flip(source: Source, args: Mapping[str, Any]) -> Outcome:
    direction = _DIRECTIONS[str(args["direction"])]
    return Outcome(image=image.flip(_held(source), direction, max_pixels=args["max_pixels"]))


def auto_orient(source: Source, args: Mapping[str, Any]) -> Outcome:
    return Outcome(image=image.auto_orient(_held(source), max_pixels=args["max_pixels"]))


_ENCODE_OPTIONS = (
    "format",
    "quality",
    "progressive",
    "optimize",
    "lossless",
    "compress_level",
    "strip",
)


def to_bytes(source: Source, args: Mapping[str, Any]) -> Outcome:
    options = _present_options(args, *_ENCODE_OPTIONS)
    encoded = image.to_bytes(_held(source), output=keep, max_pixels=args["max_pixels"], **options)
    return Outcome(data=encoded)


def formats(source: Source, args: Mapping[str, Any]) -> Outcome:
    return Outcome(term={Atom(k): [Atom(f) for f in v] for k, v in image.formats().items()})


OPS: dict[str, Callable[[Source, Mapping[str, Any]], Outcome]] = {
    "from_bytes": from_bytes,
    "info": info,
    "thumbnail": thumbnail,
    "resize": resize,
    "crop": crop,
    "rotate": rotate,
    "flip": flip,
    "auto_orient": auto_orient,
    "to_bytes": to_bytes,
    "formats": formats,
}


#: Operations whose result is a new held image.
HOLDS_RESULT = frozenset(
    {"from_bytes", "thumbnail", "resize", "crop", "rotate", "flip", "auto_orient"}
)


def run(name: str, source: Source, args: Mapping[str, Any]) -> Outcome:
    """Run the operation ``name``; raises what it raises (a :class:`MirageError` for
    bad data, anything else for a bug, including an unknown ``name``)."""
    operation = OPS.get(name)
    if operation is None:
        raise ValueError(f"unknown operation {name!r}")
    return operation(source, args)
