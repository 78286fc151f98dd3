"""Erlang's External Term Format (ETF): the bytes of ``:erlang.term_to_binary/1``.

The BEAM side sends operation arguments as ``term_to_binary(term)``; Python replies with
an ETF binary that the NIF turns back into a term with ``ERL_NIF_BIN2TERM_SAFE``. The
port program and the distributed-Erlang node use the same codec, so :func:`decode`
treats its input as untrusted: anything malformed, truncated or unsupported raises
:class:`DecodeError` (and nothing else), lengths are checked against the remaining
input before anything is allocated, nesting is capped at :data:`MAX_DEPTH` and
compressed terms at :data:`MAX_UNCOMPRESSED_SIZE`, and the work done stays linear in the
input's size: a map may hold at most :data:`MAX_KEYS_PER_HASH` keys sharing one Python
hash (integers congruent modulo ``2**61 - 1`` all do, and a dict of n of them takes
n**2 comparisons to build), and list tails are read in a loop, not per nesting level.

Decoding maps Erlang terms to Python as follows (encoding is the reverse):

- integers -> ``int``; floats -> ``float`` (NaN and infinities do not exist in Erlang);
- ``true``/``false`` -> ``True``/``False``, ``nil`` -> ``None`` (Elixir's nil), any other
  atom -> :class:`Atom`, a ``str`` subclass;
- binaries -> ``bytes``; a ``str`` that is not an :class:`Atom`, ``bytearray`` and
  ``memoryview`` also encode as binaries (a ``str`` as UTF-8, like Elixir strings);
- tuples -> ``tuple``; proper lists, charlists included -> ``list``; maps -> ``dict``;
- pids, references, ports and external funs ``fun M:F/A`` -> the frozen dataclasses
  :class:`Pid`, :class:`Reference`, :class:`Port` and :class:`Export`.

Improper lists (``[a | b]``) are refused unless ``decode(data, improper_lists=True)``
asks for them (the distribution layer does: ``gen_server`` call tags look like
``[alias | Ref]``); they then decode to :class:`ImproperList`, which always encodes.

Re-encoding a decoded term gives back ``term_to_binary(T, [{minor_version, 2}])`` (the
OTP 26+ default) byte for byte: decoding keeps the map key order, and the encoder
writes dicts in their own order (the VM accepts any). Closures, bitstrings that do
not end on a byte boundary, improper lists (by default), and maps whose keys collide as Python
values (``1`` and ``1.0``, or ``1`` and ``true``) are rejected rather than silently
changed.
"""

from __future__ import annotations

import math
import re
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final, cast

__all__ = [
    "MAX_DEPTH",
    "MAX_KEYS_PER_HASH",
    "MAX_UNCOMPRESSED_SIZE",
    "VIEW_AT",
    "Atom",
    "DecodeError",
    "EncodeError",
    "Export",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "decode",
    "decode_prefix",
    "encode",
    "encode_parts",
]

VERSION: Final = 131
# Containers nested deeper than this are refused: it keeps hostile input from
# exhausting the Python stack (the recursion uses one frame per level).
MAX_DEPTH: Final = 512
# A compressed term declares its inflated size up front; larger claims are refused
# before inflating, so a small zlib bomb cannot allocate more than this.
MAX_UNCOMPRESSED_SIZE: Final = 64 * 1024 * 1024
# A map may hold at most this many keys with one Python hash (see _count_hash).
MAX_KEYS_PER_HASH: Final = 8
# Integers strictly between these hash to themselves (-1 aside, which hashes as -2).
_HASH_MIN: Final = -sys.hash_info.modulus
_HASH_MAX: Final = sys.hash_info.modulus
# decode(views=True) returns binaries at least this long as views of its input.
VIEW_AT: Final = 64 * 1024
# Erlang refuses atoms longer than 255 characters (not bytes).
MAX_ATOM_CHARS: Final = 255
# The VM rejects references with more ids than this (ERTS_MAX_REF_NUMBERS).
MAX_REFERENCE_IDS: Final = 5

# Tags, named as in erts/emulator/beam/external.h.
NEW_FLOAT_EXT: Final = 70
BIT_BINARY_EXT: Final = 77
COMPRESSED: Final = 80
NEW_PID_EXT: Final = 88
NEW_PORT_EXT: Final = 89
NEWER_REFERENCE_EXT: Final = 90
SMALL_INTEGER_EXT: Final = 97
INTEGER_EXT: Final = 98
FLOAT_EXT: Final = 99
ATOM_EXT: Final = 100
REFERENCE_EXT: Final = 101
PORT_EXT: Final = 102
PID_EXT: Final = 103
SMALL_TUPLE_EXT: Final = 104
LARGE_TUPLE_EXT: Final = 105
NIL_EXT: Final = 106
STRING_EXT: Final = 107
LIST_EXT: Final = 108
BINARY_EXT: Final = 109
SMALL_BIG_EXT: Final = 110
LARGE_BIG_EXT: Final = 111
EXPORT_EXT: Final = 113
NEW_REFERENCE_EXT: Final = 114
SMALL_ATOM_EXT: Final = 115
MAP_EXT: Final = 116
ATOM_UTF8_EXT: Final = 118
SMALL_ATOM_UTF8_EXT: Final = 119
V4_PORT_EXT: Final = 120

# Tags that are valid ETF but deliberately unsupported, for clearer errors.
_UNSUPPORTED: Final = {
    COMPRESSED: "a compressed term is only allowed at the top level",
    82: "ATOM_CACHE_REF (distribution header atom cache) is not supported",
    112: "NEW_FUN_EXT (closures) is not supported",
    117: "FUN_EXT (closures) is not supported",
    121: "LOCAL_EXT (node-local terms) is not supported",
}

_U8: Final = struct.Struct(">B")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_I32: Final = struct.Struct(">i")
_U64: Final = struct.Struct(">Q")
_F64: Final = struct.Struct(">d")
_U32_U32: Final = struct.Struct(">II")
_U32_U32_U8: Final = struct.Struct(">IIB")
_U32_U32_U32: Final = struct.Struct(">III")
_U64_U32: Final = struct.Struct(">QI")
_U32_U8: Final = struct.Struct(">IB")
# n big-endian u32s, for reference ids (plus the creation when encoding).
_REF_IDS: Final = {n: struct.Struct(f">{n}I") for n in range(1, MAX_REFERENCE_IDS + 2)}

# FLOAT_EXT is C's "%.20e" padded with NULs; the VM accepts only this digit shape.
_FLOAT_EXT_TEXT: Final = re.compile(rb"[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?")

_I32_MIN: Final = -(2**31)
_I32_MAX: Final = 2**31 - 1
_U32_MAX: Final = 2**32 - 1
# The VM writes port ids above 28 bits (its old port number width) as V4_PORT_EXT.
_MAX_V3_PORT_ID: Final = 2**28 - 1
_TRUNCATED: Final = "truncated input"


class DecodeError(ValueError):
    """The input is not a complete, well-formed, supported ETF term."""


class EncodeError(ValueError):
    """The Python value has no ETF representation (or breaks an Erlang limit)."""


class Atom(str):
    """An Erlang atom: a ``str``, so it compares equal to its name, but distinct by type.

    ``true``, ``false`` and ``nil`` decode to ``True``, ``False`` and ``None`` instead.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class Pid:
    """A process identifier; encodes as NEW_PID_EXT."""

    node: Atom
    id: int
    serial: int
    creation: int


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference (``make_ref/0``, monitors, aliases); encodes as NEWER_REFERENCE_EXT.

    ``ids`` are in wire order, which is the reverse of ``#Reference<0.a.b.c>``.
    """

    node: Atom
    creation: int
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Port:
    """A port identifier; encodes as NEW_PORT_EXT, or V4_PORT_EXT for 64-bit ids."""

    node: Atom
    id: int
    creation: int


@dataclass(frozen=True, slots=True)
class Export:
    """An external fun ``fun Module:Function/Arity`` (``&Mod.fun/arity``)."""

    module: Atom
    function: Atom
    arity: int


@dataclass(frozen=True, slots=True)
class ImproperList:
    """A list whose tail is not a list: ``[items... | tail]``, e.g. ``[alias | Ref]``.

    ``items`` is never empty and ``tail`` is never a list (that would be a proper list).
    """

    items: tuple[object, ...]
    tail: object


# --- decoding -------------------------------------------------------------------------

_MISSING: Final = object()
# Decoded atoms by their raw bytes: most messages repeat the same few option names,
# and a dict hit is several times cheaper than decode + Atom(). Bounded, so a peer
# sending endless distinct atoms only stops the caching.
_ATOM_CACHE_LIMIT: Final = 4096
_SPECIAL_ATOMS: Final[dict[str, object]] = {"true": True, "false": False, "nil": None}
_UTF8_ATOMS: dict[bytes, object] = {k.encode(): v for k, v in _SPECIAL_ATOMS.items()}
_LATIN1_ATOMS: dict[bytes, object] = dict(_UTF8_ATOMS)


class _Borrowing(threading.local):
    """The input of the decode(views=True) running on this thread, as a memoryview."""

    view: memoryview | None = None


_borrowing = _Borrowing()


class _ImproperLists(threading.local):
    """Whether the decode running on this thread takes improper lists; read only where
    an improper tail is met, so the common path pays nothing for it."""

    allowed: bool = False


_improper_lists = _ImproperLists()


def decode(
    data: bytes | bytearray | memoryview,
    *,
    views: bool = False,
    improper_lists: bool = False,
    start: int = 0,
) -> object:
    """The term encoded in ``data`` (with its leading version byte 131).

    The whole input must be one term; any malformed, truncated, trailing or
    unsupported content raises :class:`DecodeError`. With ``improper_lists=True``, a
    list whose tail is not a list decodes to :class:`ImproperList` instead of failing.

    With ``views=True``, binaries of :data:`VIEW_AT` bytes or more come back as
    read-only ``memoryview`` slices of the input instead of ``bytes`` copies (a
    transport that read a request into one ``bytes`` object then holds each large
    binary once). The views keep the whole input alive.

    ``start`` is where the term begins in ``data`` (a message after the control
    message of a distribution packet is decoded in place, not copied out first).
    """
    data = _as_bytes(data)
    term, pos = _decode_prefix(data, views, improper_lists, start)
    if pos != len(data):
        raise DecodeError(f"{len(data) - pos} trailing byte(s) after the term")
    return term


def decode_prefix(
    data: bytes | bytearray | memoryview, *, views: bool = False, improper_lists: bool = False
) -> tuple[object, int]:
    """The term at the start of ``data`` and the number of bytes it took.

    Like :func:`decode`, but bytes after the term are left alone: the distribution
    protocol sends a control message and a message back to back. A compressed term
    must still be the whole input.
    """
    return _decode_prefix(_as_bytes(data), views, improper_lists)


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    # Any buffer (bytearray, memoryview, a cffi buffer) is copied once: slices of
    # bytes are cheap and are the decoded binaries. memoryview() also refuses
    # non-buffers, where bytes(n) would quietly make n zero bytes.
    return memoryview(data).tobytes()


def _decode_prefix(
    data: bytes, views: bool, improper_lists: bool, start: int = 0
) -> tuple[object, int]:
    if not 0 <= start < len(data):
        raise DecodeError("empty input")
    if data[start] != VERSION:
        raise DecodeError(f"expected version byte {VERSION}, got {data[start]}")
    compressed = len(data) > start + 1 and data[start + 1] == COMPRESSED
    _improper_lists.allowed = improper_lists
    try:
        # _inflate refuses bytes after the zlib stream: a compressed term is always
        # the whole input, also for decode_prefix.
        source = _inflate(data[start:]) if compressed else data
        pos = 0 if compressed else start + 1
        if views:
            _borrowing.view = memoryview(source)
            try:
                term, pos = _decode_term(source, pos, 0)
            finally:
                _borrowing.view = None
        else:
            term, pos = _decode_term(source, pos, 0)
    # Fixed-size reads are not bounds-checked one by one: running off the end shows
    # up as one of these and means the input was cut short.
    except (IndexError, struct.error):
        raise DecodeError(_TRUNCATED) from None
    except RecursionError:
        # Only reachable when the caller's own stack is already deep.
        raise DecodeError("term nested too deeply for the Python stack") from None
    finally:
        _improper_lists.allowed = False
    if compressed:
        if pos != len(source):
            raise DecodeError(f"{len(source) - pos} trailing byte(s) after the term")
        return term, len(data)
    return term, pos


def _inflate(data: bytes) -> bytes:
    """The term inside a compressed ETF: 131, 80, size (u32), zlib stream."""
    (size,) = _U32.unpack_from(data, 2)
    if size == 0:
        raise DecodeError("compressed term declares size 0")
    if size > MAX_UNCOMPRESSED_SIZE:
        raise DecodeError(
            f"compressed term declares {size} bytes, over the {MAX_UNCOMPRESSED_SIZE} cap"
        )
    inflater = zlib.decompressobj()
    try:
        # max_length stops a stream that inflates beyond its declared size early.
        term = inflater.decompress(data[6:], size)
    except zlib.error as exc:
        raise DecodeError(f"bad zlib stream in compressed term: {exc}") from None
    if len(term) != size or not inflater.eof:
        raise DecodeError(f"compressed term does not inflate to its declared {size} bytes")
    if inflater.unused_data:
        raise DecodeError(f"{len(inflater.unused_data)} trailing byte(s) after the term")
    return term


def _too_long(what: str, n: int) -> DecodeError:
    return DecodeError(f"{what} length {n} exceeds the remaining input")


def _too_deep() -> DecodeError:
    return DecodeError(f"term nested deeper than {MAX_DEPTH} levels")


def _decode_term(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    """The term starting at ``data[pos]`` and the position just after it."""
    tag = data[pos]
    pos += 1
    # The common tags are tested first, inline; the rest go through _DECODERS.
    # Containers recurse from here directly: one Python frame per nesting level.
    if tag == SMALL_ATOM_UTF8_EXT:  # the OTP 26+ default for atoms
        end = pos + 1 + data[pos]
        if end > len(data):
            raise DecodeError(_TRUNCATED)
        raw = data[pos + 1 : end]
        value = _UTF8_ATOMS.get(raw, _MISSING)
        if value is _MISSING:
            value = _new_atom(raw, utf8=True)
        return value, end
    if tag == ATOM_EXT:  # what OTP 25 and older send for Latin-1 atoms
        end = pos + 2 + (data[pos] << 8 | data[pos + 1])
        if end > len(data):
            raise DecodeError(_TRUNCATED)
        raw = data[pos + 2 : end]
        value = _LATIN1_ATOMS.get(raw, _MISSING)
        if value is _MISSING:
            value = _new_atom(raw, utf8=False)
        return value, end
    if tag == SMALL_INTEGER_EXT:
        return data[pos], pos + 1
    if tag == BINARY_EXT:
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        end = pos + n
        if end > len(data):
            raise _too_long("BINARY_EXT", n)
        if n >= VIEW_AT:
            view = _borrowing.view
            if view is not None:
                return view[pos:end], end
        return data[pos:end], end
    if tag == INTEGER_EXT:
        return _I32.unpack_from(data, pos)[0], pos + 4
    if tag == MAP_EXT:
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        if 2 * n > len(data) - pos:  # every key and value takes at least one byte
            raise _too_long("MAP_EXT", n)
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep()
        result: dict[object, object] = {}
        same_hash: dict[int, int] | None = None
        for _ in range(n):
            key, pos = _decode_term(data, pos, depth)
            # Atoms and binaries hash with the per-process random seed, and integers
            # below the hash modulus hash to themselves: none of those can be steered
            # into colliding. Every other key is counted by hash (see _count_hash).
            key_type = type(key)
            if not (
                key_type is Atom
                or key_type is bytes
                or (key_type is int and _HASH_MIN < key < _HASH_MAX)  # type: ignore[operator]
            ):
                if same_hash is None:
                    same_hash = {}
                _count_hash(key, same_hash)
            value, pos = _decode_term(data, pos, depth)
            result[key] = value
        if len(result) != n:
            raise DecodeError("map has keys that are equal as Python values")
        return result, pos
    if tag == LIST_EXT:
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        if n >= len(data) - pos:  # every element and the tail take at least one byte
            raise _too_long("LIST_EXT", n)
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep()
        items: list[object] = []
        append = items.append
        while True:
            for _ in range(n):
                item, pos = _decode_term(data, pos, depth)
                append(item)
            tail = data[pos]
            if tail == NIL_EXT:
                return items, pos + 1
            # [1 | [2]] and [1 | "ab"] are still proper lists, just unusually encoded.
            # The tail is read here, in a loop, rather than decoded as a term and
            # appended: [1 | [2 | [3 | ...]]] then costs neither a Python frame per
            # level nor a copy of the rest of the list per level.
            if tail == STRING_EXT:
                end = pos + 3 + (data[pos + 1] << 8 | data[pos + 2])
                if end > len(data):
                    raise DecodeError(_TRUNCATED)
                items.extend(data[pos + 3 : end])
                return items, end
            if tail != LIST_EXT:
                if not _improper_lists.allowed:
                    raise DecodeError("improper list (the tail is not a list)")
                rest, pos = _decode_term(data, pos, depth)
                return ImproperList(tuple(items), rest), pos
            (n,) = _U32.unpack_from(data, pos + 1)
            pos += 5
            if n >= len(data) - pos:
                raise _too_long("LIST_EXT", n)
    if tag == NIL_EXT:
        return [], pos
    if tag == SMALL_TUPLE_EXT or tag == LARGE_TUPLE_EXT:
        if tag == SMALL_TUPLE_EXT:
            n = data[pos]
            pos += 1
        else:
            (n,) = _U32.unpack_from(data, pos)
            pos += 4
        if n > len(data) - pos:  # every element takes at least one byte
            raise _too_long("tuple", n)
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep()
        items = []
        append = items.append
        for _ in range(n):
            item, pos = _decode_term(data, pos, depth)
            append(item)
        return tuple(items), pos
    if tag == NEW_FLOAT_EXT:
        (number,) = _F64.unpack_from(data, pos)
        if not math.isfinite(number):
            raise DecodeError("float is not finite")
        return number, pos + 8
    if tag == STRING_EXT:  # a charlist of bytes: [0..255]
        end = pos + 2 + (data[pos] << 8 | data[pos + 1])
        if end > len(data):
            raise DecodeError(_TRUNCATED)
        return list(data[pos + 2 : end]), end
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise DecodeError(_UNSUPPORTED.get(tag, f"unknown tag {tag}"))
    return decoder(data, pos, depth)


def _count_hash(key: object, same_hash: dict[int, int]) -> None:
    """Count ``key`` under its hash in ``same_hash``; refuse a hash used too often.

    A dict finds a key by following the probe sequence of its hash and calls ``==``
    only on entries whose stored hash is equal, so inserting a key costs about as many
    comparisons as there are keys with the very same hash. Python's hashes of ints
    (and of floats, tuples and the term dataclasses built on them) are not seeded: the
    integers ``k * (2**61 - 1)`` all hash to 0, so a map of n of them would take n**2/2
    comparisons to build. Capping keys per hash keeps building the dict linear.
    ``same_hash`` itself is keyed by hash values, which are ints below 2**63: at most
    a handful of them (those congruent modulo 2**61 - 1) collide there.
    """
    try:
        h = hash(key)
    except TypeError:
        raise DecodeError(
            f"map key of type {type(key).__name__} is not hashable in Python"
        ) from None
    count = same_hash.get(h, 0) + 1
    if count > MAX_KEYS_PER_HASH:
        raise DecodeError(f"map has more than {MAX_KEYS_PER_HASH} keys with the same Python hash")
    same_hash[h] = count


def _atom_name(raw: bytes, *, utf8: bool) -> str:
    try:
        name = raw.decode("utf-8" if utf8 else "latin-1")
    except UnicodeDecodeError:
        raise DecodeError(f"atom is not valid UTF-8: {raw[:40]!r}") from None
    if len(name) > MAX_ATOM_CHARS:
        raise DecodeError(f"atom longer than {MAX_ATOM_CHARS} characters")
    return name


def _new_atom(raw: bytes, *, utf8: bool) -> object:
    """The value of an atom not yet in the cache (adding it while there is room)."""
    name = _atom_name(raw, utf8=utf8)
    value = _SPECIAL_ATOMS.get(name, _MISSING)
    if value is _MISSING:
        value = Atom(name)
    cache = _UTF8_ATOMS if utf8 else _LATIN1_ATOMS
    if len(cache) < _ATOM_CACHE_LIMIT:
        cache[raw] = value
    return value


def _decode_atom_utf8(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    (n,) = _U16.unpack_from(data, pos)
    end = pos + 2 + n
    if end > len(data):
        raise DecodeError(_TRUNCATED)
    return _new_atom(data[pos + 2 : end], utf8=True), end


def _decode_small_atom(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    end = pos + 1 + data[pos]
    if end > len(data):
        raise DecodeError(_TRUNCATED)
    return _new_atom(data[pos + 1 : end], utf8=False), end


_ATOM_HEADERS: Final = {
    # tag: (width of the length field, UTF-8?)
    SMALL_ATOM_UTF8_EXT: (1, True),
    ATOM_UTF8_EXT: (2, True),
    ATOM_EXT: (2, False),
    SMALL_ATOM_EXT: (1, False),
}


def _decode_node_atom(data: bytes, pos: int) -> tuple[Atom, int]:
    """An atom naming a node, module or function: always an :class:`Atom`.

    ``true``/``false``/``nil`` stay atoms here, since these fields must be atoms.
    """
    header = _ATOM_HEADERS.get(data[pos])
    if header is None:
        raise DecodeError(f"expected an atom, got tag {data[pos]}")
    width, utf8 = header
    n = data[pos + 1] if width == 1 else _U16.unpack_from(data, pos + 1)[0]
    start = pos + 1 + width
    end = start + n
    if end > len(data):
        raise DecodeError(_TRUNCATED)
    return Atom(_atom_name(data[start:end], utf8=utf8)), end


def _decode_big(data: bytes, pos: int, n: int) -> tuple[object, int]:
    sign = data[pos]
    if sign > 1:
        raise DecodeError(f"bad integer sign byte {sign}")
    end = pos + 1 + n
    if end > len(data):
        raise _too_long("big integer", n)
    magnitude = int.from_bytes(data[pos + 1 : end], "little")
    return (-magnitude if sign else magnitude), end


def _decode_small_big(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    return _decode_big(data, pos + 1, data[pos])


def _decode_large_big(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    (n,) = _U32.unpack_from(data, pos)
    return _decode_big(data, pos + 4, n)


def _decode_old_float(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    end = pos + 31
    if end > len(data):
        raise DecodeError(_TRUNCATED)
    text = data[pos:end].split(b"\0", 1)[0]
    if not _FLOAT_EXT_TEXT.fullmatch(text):
        raise DecodeError(f"bad FLOAT_EXT text {text!r}")
    number = float(text)
    if not math.isfinite(number):
        raise DecodeError("float is not finite")
    return number, end


def _decode_bit_binary(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    n, bits = _U32_U8.unpack_from(data, pos)
    pos += 5
    end = pos + n
    if end > len(data):
        raise _too_long("BIT_BINARY_EXT", n)
    # Same rule as the VM: an empty one says 0 bits, otherwise 1..8 bits are used.
    if (n == 0 and bits != 0) or (n > 0 and not 1 <= bits <= 8):
        raise DecodeError(f"BIT_BINARY_EXT with {n} byte(s) cannot use {bits} bits")
    if n > 0 and bits != 8:
        raise DecodeError("bitstrings (binaries not a whole number of bytes) are not supported")
    return data[pos:end], end


def _decode_new_pid(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    node, pos = _decode_node_atom(data, pos)
    pid_id, serial, creation = _U32_U32_U32.unpack_from(data, pos)
    return Pid(node, pid_id, serial, creation), pos + 12


def _decode_pid(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    node, pos = _decode_node_atom(data, pos)
    pid_id, serial, creation = _U32_U32_U8.unpack_from(data, pos)
    return Pid(node, pid_id, serial, creation), pos + 9


def _decode_ref_ids(data: bytes, pos: int, n: int) -> tuple[tuple[int, ...], int]:
    return _REF_IDS[n].unpack_from(data, pos), pos + 4 * n


def _check_ref_length(n: int) -> None:
    if not 1 <= n <= MAX_REFERENCE_IDS:
        raise DecodeError(f"reference with {n} ids (1..{MAX_REFERENCE_IDS} allowed)")


def _decode_newer_reference(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    (n,) = _U16.unpack_from(data, pos)
    _check_ref_length(n)
    node, pos = _decode_node_atom(data, pos + 2)
    (creation,) = _U32.unpack_from(data, pos)
    ids, pos = _decode_ref_ids(data, pos + 4, n)
    return Reference(node, creation, ids), pos


def _decode_new_reference(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    (n,) = _U16.unpack_from(data, pos)
    _check_ref_length(n)
    node, pos = _decode_node_atom(data, pos + 2)
    creation = data[pos]
    ids, pos = _decode_ref_ids(data, pos + 1, n)
    return Reference(node, creation, ids), pos


def _decode_reference(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    node, pos = _decode_node_atom(data, pos)
    ref_id, creation = _U32_U8.unpack_from(data, pos)
    return Reference(node, creation, (ref_id,)), pos + 5


def _decode_v4_port(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    node, pos = _decode_node_atom(data, pos)
    port_id, creation = _U64_U32.unpack_from(data, pos)
    return Port(node, port_id, creation), pos + 12


def _decode_new_port(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    node, pos = _decode_node_atom(data, pos)
    port_id, creation = _U32_U32.unpack_from(data, pos)
    return Port(node, port_id, creation), pos + 8


def _decode_port(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    node, pos = _decode_node_atom(data, pos)
    port_id, creation = _U32_U8.unpack_from(data, pos)
    return Port(node, port_id, creation), pos + 5


def _decode_export(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    module, pos = _decode_node_atom(data, pos)
    function, pos = _decode_node_atom(data, pos)
    tag = data[pos]
    # The VM writes a SMALL_INTEGER_EXT but accepts any integer for the arity.
    if tag == SMALL_INTEGER_EXT:
        arity, pos = data[pos + 1], pos + 2
    elif tag == INTEGER_EXT:
        arity, pos = _I32.unpack_from(data, pos + 1)[0], pos + 5
    else:
        raise DecodeError(f"EXPORT_EXT arity must be an integer, got tag {tag}")
    if not 0 <= arity <= 255:
        raise DecodeError(f"EXPORT_EXT arity {arity} out of range")
    return Export(module, function, arity), pos


_Decoder = Callable[[bytes, int, int], tuple[object, int]]
_DECODERS: Final[dict[int, _Decoder]] = {
    SMALL_BIG_EXT: _decode_small_big,
    LARGE_BIG_EXT: _decode_large_big,
    ATOM_UTF8_EXT: _decode_atom_utf8,
    SMALL_ATOM_EXT: _decode_small_atom,
    FLOAT_EXT: _decode_old_float,
    BIT_BINARY_EXT: _decode_bit_binary,
    NEW_PID_EXT: _decode_new_pid,
    PID_EXT: _decode_pid,
    NEWER_REFERENCE_EXT: _decode_newer_reference,
    NEW_REFERENCE_EXT: _decode_new_reference,
    REFERENCE_EXT: _decode_reference,
    V4_PORT_EXT: _decode_v4_port,
    NEW_PORT_EXT: _decode_new_port,
    PORT_EXT: _decode_port,
    EXPORT_EXT: _decode_export,
}


# --- encoding -------------------------------------------------------------------------


def encode(term: object) -> bytes:
    """``term`` in ETF, with the version byte, as ``term_to_binary/1`` would write it.

    Raises :class:`EncodeError` for values with no Erlang counterpart.
    """
    out = _encode_into_chunks(term)
    if out.chunks:
        out.chunks.append(out)
        return b"".join(out.chunks)
    return bytes(out)


def encode_parts(term: object) -> list[bytes | bytearray | memoryview]:
    """:func:`encode`'s bytes as consecutive parts, for a vectored write (``os.writev``).

    Binaries of 64 KiB or more are parts of their own, the very objects found in
    ``term`` (not copies): the caller must not change them before writing the parts.
    """
    out = _encode_into_chunks(term)
    out.chunks.append(out)
    return out.chunks


def _encode_into_chunks(term: object) -> _Output:
    # The encoding: earlier parts and large binaries in out.chunks, the rest in out.
    out = _Output(_VERSION_BYTE)
    out.chunks = []
    try:
        _encode_term(term, out, 0)
    except RecursionError:
        # Only reachable when the caller's own stack is already deep.
        raise EncodeError("term nested too deeply for the Python stack") from None
    return out


# Binaries at least this long are not copied into the output buffer but joined in
# once at the end (or handed over as they are, by encode_parts): copying image-sized
# data into a growing bytearray costs far more.
_JOIN_AT: Final = 64 * 1024
_VERSION_BYTE: Final = bytes((VERSION,))


class _Output(bytearray):
    """The encoded bytes so far, plus ``chunks``: earlier output and large binaries."""

    __slots__ = ("chunks",)
    # Set by encode(); no __init__, which would cost more than a small term's encoding.
    chunks: list[bytes | bytearray | memoryview]

    def write_binary(self, data: bytes | bytearray | memoryview, n: int) -> None:
        """A BINARY_EXT of the ``n`` bytes in the (C-contiguous) buffer ``data``."""
        if n > _U32_MAX:
            raise EncodeError(f"binary of {n} bytes is too large for BINARY_EXT")
        self.append(BINARY_EXT)
        self.extend(_U32.pack(n))
        if n < _JOIN_AT:
            self.extend(data)
        else:
            self.chunks.append(bytes(self))
            self.chunks.append(data)
            self.clear()


# An encoder writes its term's header (or all of a scalar) and returns the children
# still to encode, or None. _encode_term recurses into the children itself, so each
# nesting level costs one Python frame, as in decoding.
_Encoder = Callable[[Any, _Output], Iterable[object] | None]


def _encode_term(term: object, out: _Output, depth: int) -> None:
    encoder = _ENCODERS.get(type(term))
    if encoder is None:
        encoder = _encoder_for_subclass(term)
    children = encoder(term, out)
    if children is None:
        return
    depth += 1
    if depth > MAX_DEPTH:
        raise EncodeError(f"term nested deeper than {MAX_DEPTH} levels")
    for child in children:
        _encode_term(child, out, depth)
    if encoder is _encode_list:
        out.append(NIL_EXT)  # the tail of a proper list


def _encoder_for_subclass(term: object) -> _Encoder:
    # Order matters: bool is an int, Atom is a str.
    for base, encoder in _SUBCLASS_ENCODERS:
        if isinstance(term, base):
            return encoder
    raise EncodeError(f"cannot encode a value of type {type(term).__qualname__} as ETF")


def _encode_atom_name(name: str, out: _Output) -> None:
    if len(name) > MAX_ATOM_CHARS:
        raise EncodeError(f"atom longer than {MAX_ATOM_CHARS} characters: {name[:40]!r}...")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"atom is not encodable as UTF-8: {exc}") from None
    if len(raw) <= 255:
        out.append(SMALL_ATOM_UTF8_EXT)
        out.append(len(raw))
    else:
        out.append(ATOM_UTF8_EXT)
        out += _U16.pack(len(raw))
    out += raw


def _encode_atom(term: str, out: _Output) -> None:
    _encode_atom_name(term, out)


_TRUE: Final = bytes((SMALL_ATOM_UTF8_EXT, 4)) + b"true"
_FALSE: Final = bytes((SMALL_ATOM_UTF8_EXT, 5)) + b"false"
_NIL: Final = bytes((SMALL_ATOM_UTF8_EXT, 3)) + b"nil"


def _encode_bool(term: bool, out: _Output) -> None:
    out += _TRUE if term else _FALSE


def _encode_none(term: None, out: _Output) -> None:
    out += _NIL


def _encode_int(term: int, out: _Output) -> None:
    if 0 <= term <= 255:
        out.append(SMALL_INTEGER_EXT)
        out.append(term)
    elif _I32_MIN <= term <= _I32_MAX:
        out.append(INTEGER_EXT)
        out += _I32.pack(term)
    else:
        magnitude = -term if term < 0 else term
        n = (magnitude.bit_length() + 7) // 8
        if n <= 255:
            out += bytes((SMALL_BIG_EXT, n, term < 0))
        elif n <= _U32_MAX:
            out.append(LARGE_BIG_EXT)
            out += _U32.pack(n)
            out.append(term < 0)
        else:
            raise EncodeError("integer too large for LARGE_BIG_EXT")
        out += magnitude.to_bytes(n, "little")


def _encode_float(term: float, out: _Output) -> None:
    if not math.isfinite(term):
        raise EncodeError(f"Erlang has no float {term!r}")
    out.append(NEW_FLOAT_EXT)
    out += _F64.pack(term)


def _encode_bytes(term: bytes | bytearray, out: _Output) -> None:
    out.write_binary(term, len(term))


def _encode_memoryview(term: memoryview, out: _Output) -> None:
    # nbytes, not len(): a view of wider items has fewer items than bytes.
    out.write_binary(term if term.c_contiguous else term.tobytes(), term.nbytes)


def _encode_str(term: str, out: _Output) -> None:
    try:
        raw = term.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"string is not encodable as UTF-8: {exc}") from None
    out.write_binary(raw, len(raw))


def _encode_tuple(term: tuple[object, ...], out: _Output) -> Iterable[object]:
    n = len(term)
    if n <= 255:
        out.append(SMALL_TUPLE_EXT)
        out.append(n)
    else:
        out.append(LARGE_TUPLE_EXT)
        out += _U32.pack(n)
    return term


def _encode_list(term: list[object], out: _Output) -> Iterable[object] | None:
    n = len(term)
    if n == 0:
        out.append(NIL_EXT)
        return None
    # The VM writes lists of bytes as STRING_EXT; doing the same keeps the output
    # identical to term_to_binary. type() rather than isinstance() keeps True out.
    if n <= 0xFFFF and all(type(x) is int and 0 <= x <= 255 for x in term):
        out.append(STRING_EXT)
        out += _U16.pack(n)
        out += bytes(cast("list[int]", term))
        return None
    out.append(LIST_EXT)
    out += _U32.pack(n)
    return term  # _encode_term adds the NIL_EXT tail


def _encode_improper_list(term: ImproperList, out: _Output) -> Iterable[object]:
    items = tuple(term.items)
    if not items:
        raise EncodeError("ImproperList needs at least one item before its tail")
    if isinstance(term.tail, (list, ImproperList)):
        raise EncodeError("ImproperList tail must not be a list (write the whole list)")
    out.append(LIST_EXT)
    out += _U32.pack(len(items))
    return chain(items, (term.tail,))  # the tail takes NIL_EXT's place


def _encode_dict(term: dict[object, object], out: _Output) -> Iterable[object]:
    out.append(MAP_EXT)
    out += _U32.pack(len(term))
    return chain.from_iterable(term.items())


def _encode_node(node: object, out: _Output, what: str) -> None:
    if not isinstance(node, str):
        raise EncodeError(f"{what} must be an atom (str), not {type(node).__name__}")
    _encode_atom_name(node, out)


def _pack(packer: struct.Struct, what: str, *values: object) -> bytes:
    try:
        return packer.pack(*values)
    except struct.error as exc:
        raise EncodeError(f"{what} field out of range: {values!r} ({exc})") from None


def _encode_pid(term: Pid, out: _Output) -> None:
    out.append(NEW_PID_EXT)
    _encode_node(term.node, out, "Pid.node")
    out += _pack(_U32_U32_U32, "Pid", term.id, term.serial, term.creation)


def _encode_reference(term: Reference, out: _Output) -> None:
    ids = tuple(term.ids)
    if not 1 <= len(ids) <= MAX_REFERENCE_IDS:
        raise EncodeError(f"Reference needs 1..{MAX_REFERENCE_IDS} ids, got {len(ids)}")
    out.append(NEWER_REFERENCE_EXT)
    out += _U16.pack(len(ids))
    _encode_node(term.node, out, "Reference.node")
    out += _pack(_REF_IDS[1 + len(ids)], "Reference", term.creation, *ids)


def _encode_port(term: Port, out: _Output) -> None:
    # Like the VM: the 64-bit form only for ids over 28 bits.
    wide = isinstance(term.id, int) and term.id > _MAX_V3_PORT_ID
    out.append(V4_PORT_EXT if wide else NEW_PORT_EXT)
    _encode_node(term.node, out, "Port.node")
    out += _pack(_U64_U32 if wide else _U32_U32, "Port", term.id, term.creation)


def _encode_export(term: Export, out: _Output) -> None:
    out.append(EXPORT_EXT)
    _encode_node(term.module, out, "Export.module")
    _encode_node(term.function, out, "Export.function")
    out.append(SMALL_INTEGER_EXT)
    out += _pack(_U8, "Export.arity", term.arity)


_ENCODERS: Final[dict[type, _Encoder]] = {
    Atom: _encode_atom,
    int: _encode_int,
    bytes: _encode_bytes,
    str: _encode_str,
    dict: _encode_dict,
    list: _encode_list,
    tuple: _encode_tuple,
    bool: _encode_bool,
    type(None): _encode_none,
    float: _encode_float,
    bytearray: _encode_bytes,
    memoryview: _encode_memoryview,
    Pid: _encode_pid,
    Reference: _encode_reference,
    Port: _encode_port,
    Export: _encode_export,
    ImproperList: _encode_improper_list,
}
_SUBCLASS_ENCODERS: Final[tuple[tuple[type, _Encoder], ...]] = (
    (bool, _encode_bool),
    (int, _encode_int),
    (float, _encode_float),
    (Atom, _encode_atom),
    (str, _encode_str),
    (bytes, _encode_bytes),
    (bytearray, _encode_bytes),
    (tuple, _encode_tuple),
    (list, _encode_list),
    (dict, _encode_dict),
)
