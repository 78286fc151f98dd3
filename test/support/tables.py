"""Print the tables the Python core owns, a line each, for test/mirage/tables_test.exs.

    <table> <value> <value> ...
    option <operation> <name> <kind> [<value> ...]

kind: ``literal`` (followed by the values), ``bool``, ``int`` or ``other``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable

import mirage
from mirage import geometry, image
from mirage.errors import REASONS
from mirage.formats import FORMATS

# The Python function behind each operation of mirage.ops, and the argument that is
# the operation's subject rather than an option.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "from_bytes": ("from_bytes",),
    "info": ("info",),
    "thumbnail": ("thumbnail",),
    "crop": ("crop",),
    "rotate": ("rotate",),
    "flip": ("flip",),
    "auto_orient": ("auto_orient",),
    "to_bytes": ("to_bytes",),
}


# Keyword arguments of mirage.image that are not options of the BEAM API.
NOT_OPTIONS = ("output",)


def explicit(names: tuple[str, ...]) -> Callable[..., object]:
    """The first of `names` in mirage.image that spells out its keyword arguments."""
    for name in names:
        fn = getattr(image, name, None)
        if fn is None:
            continue
        kinds = [p.kind for p in inspect.signature(fn).parameters.values()]
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            return fn
    raise SystemExit(f"no mirage.image function of {names} lists its keyword arguments")


def kind(hint: object) -> list[str]:
    if typing.get_origin(hint) is typing.Literal:
        return ["literal", *typing.get_args(hint)]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if hint is bool:
        return ["bool"]
    if hint is int or (typing.get_origin(hint) is not None and args == [int]):
        return ["int"]
    return ["other"]


def main() -> None:
    print("reasons", *REASONS)
    print("formats", *FORMATS)
    print("default_max_pixels", mirage.DEFAULT_MAX_PIXELS)
    print("info_keys", *(f.name for f in dataclasses.fields(image.Info)))
    print("formats_keys", *image.formats().keys())
    print("gravities", *geometry.GRAVITIES)
    for operation, names in OPERATIONS.items():
        fn = explicit(names)
        hints = typing.get_type_hints(fn)
        for name, parameter in inspect.signature(fn).parameters.items():
            # `output` says where Python puts the encoded bytes: each transport's own.
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in NOT_OPTIONS:
                print("option", operation, name, *kind(hints[name]))


if __name__ == "__main__":
    main()
