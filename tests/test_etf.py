"""mirage.etf: Erlang's External Term Format, checked by hand and against the real VM."""

from __future__ import annotations

import base64
import enum
import math
import random
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zlib
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirage import etf
from mirage.etf import (
    MAX_DEPTH,
    MAX_UNCOMPRESSED_SIZE,
    Atom,
    DecodeError,
    EncodeError,
    Export,
    Pid,
    Port,
    Reference,
    decode,
    encode,
)

# --- helpers ------------------------------------------------------------------------------


def tagged(value: object) -> object:
    """``value`` with every part paired with its type, so ``==`` also compares types.

    Plain ``==`` would let ``True == 1``, ``1 == 1.0``, ``Atom("a") == "a"`` and
    ``0.0 == -0.0`` through.
    """
    if isinstance(value, (list, tuple)):
        if all(type(v) is int for v in value):  # a fast path for long lists of ints
            return (type(value).__name__, "ints", tuple(value))
        return (type(value).__name__, tuple(tagged(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((tagged(k), tagged(v)) for k, v in value.items()))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def assert_same(actual: object, expected: object) -> None:
    assert tagged(actual) == tagged(expected), f"{actual!r} != {expected!r}"


def as_decoded(value: object) -> object:
    """What ``decode(encode(value))`` gives: every binary comes back as ``bytes``."""
    if isinstance(value, Atom) or value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, tuple):
        return tuple(as_decoded(v) for v in value)
    if isinstance(value, list):
        return [as_decoded(v) for v in value]
    if isinstance(value, dict):
        return {as_decoded(k): as_decoded(v) for k, v in value.items()}
    return value


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def raw_list(*elements: bytes) -> bytes:
    """A LIST_EXT (without version byte) holding already-encoded elements."""
    return b"l" + u32(len(elements)) + b"".join(elements) + b"j"


def compressed(body: bytes, declared: int | None = None) -> bytes:
    """``body`` (a term without version byte) as a compressed ETF."""
    size = len(body) if declared is None else declared
    return b"\x83P" + u32(size) + zlib.compress(body)


def peak_memory(action: Callable[[], object]) -> int:
    """Peak bytes Python allocated while running ``action``."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def raises_decode_error(data: bytes) -> Callable[[], None]:
    def action() -> None:
        with pytest.raises(DecodeError):
            decode(data)

    return action


def stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def near_recursion_limit(action: Callable[[], object], headroom: int = 40) -> object:
    """Run ``action`` with only ``headroom`` Python frames left before RecursionError."""

    def dive(n: int) -> object:
        return dive(n - 1) if n else action()

    return dive(sys.getrecursionlimit() - stack_depth() - headroom)


NODE = Atom("nonode@nohost")

# --- round trips --------------------------------------------------------------------------

ROUND_TRIPS: dict[str, object] = {
    "zero": 0,
    "byte_max": 255,
    "int_256": 256,
    "minus_one": -1,
    "int32_max": 2**31 - 1,
    "int32_min": -(2**31),
    "big_2_31": 2**31,
    "big_below_int32": -(2**31) - 1,
    "big_2_64": 2**64,
    "big_neg_2_200": -(2**200),
    "large_big": 2**2100 + 12345,
    "large_big_negative": -(2**2100),
    "float": 1.5,
    "float_negative": -2.25,
    "float_negative_zero": -0.0,
    "float_tiny": 5e-324,
    "float_huge": 1.7976931348623157e308,
    "true": True,
    "false": False,
    "nil": None,
    "atom": Atom("jpg"),
    "atom_empty": Atom(""),
    "atom_undefined": Atom("undefined"),
    "atom_unicode": Atom("アトム"),
    "atom_255_chars_utf8": Atom("ア" * 255),
    "binary": b"\x00\xff abc",
    "binary_empty": b"",
    "binary_unicode": "héllo wörld ✓".encode(),
    "tuple_empty": (),
    "tuple": (Atom("ok"), 1, b"x"),
    "tuple_256": tuple(range(256)),
    "tuple_large": tuple(Atom(f"a{i}") for i in range(300)),
    "list_empty": [],
    "charlist": [104, 105],
    "list_ints": [1, 300, -1, 2**70],
    "list_bools": [True, False, 1, 0],
    "list_nested": [[], [[]], [[1, Atom("x")]]],
    "map_empty": {},
    "map": {Atom("quality"): 85, Atom("fit"): Atom("fill")},
    "map_any_keys": {
        1: Atom("int"),
        2.5: Atom("float"),
        b"bin": Atom("binary"),
        (Atom("t"), 1): Atom("tuple"),
        None: Atom("none"),
        False: Atom("no"),
    },
    "map_large": {i: i * i for i in range(100)},
    "nested": {
        Atom("list"): [{Atom("x"): (1.5, b"y", [None])}],
        Atom("deep"): ((((Atom("bottom"),),),),),
    },
    "pid": Pid(NODE, 105, 0, 0),
    "pid_remote": Pid(Atom("other@host"), 2**32 - 1, 2**32 - 1, 2**32 - 1),
    "reference": Reference(NODE, 0, (0x68A5, 0xF2680001, 0x2B4C367B)),
    "reference_one_id": Reference(Atom("n@h"), 3, (7,)),
    "reference_five_ids": Reference(Atom("n@h"), 3, (1, 2, 3, 4, 5)),
    "port": Port(NODE, 5, 0),
    "port_64bit": Port(NODE, 2**40 + 1, 7),
    "export": Export(Atom("lists"), Atom("map"), 2),
    "pid_keys": {Pid(NODE, 1, 0, 0): Reference(NODE, 0, (1, 2, 3))},
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(value: object) -> None:
    data = encode(value)
    assert data[0] == 131
    assert_same(decode(data), value)
    assert encode(decode(data)) == data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("héllo", "héllo".encode()),  # Elixir strings are binaries
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"abcdef")[1:3], b"bc"),
        (memoryview(b"abcdef")[::2], b"ace"),  # not contiguous
        (memoryview(struct.pack(">2i", 1, -1)).cast("i"), struct.pack(">2i", 1, -1)),
        ([Atom("a"), "b", [b"c"]], [Atom("a"), b"b", [b"c"]]),
        ({"key": "value"}, {b"key": b"value"}),
    ],
    ids=["str", "bytearray", "memoryview", "memoryview_strided", "memoryview_ints", "list", "map"],
)
def test_binaries_of_every_kind_decode_as_bytes(value: object, expected: object) -> None:
    assert_same(decode(encode(value)), expected)


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


Point = namedtuple("Point", "x y")


def test_subclasses_encode_as_their_base_type() -> None:
    assert encode(Colour.RED) == encode(1)
    assert encode(Name("x")) == encode(b"x")
    assert encode(Point(1, 2)) == encode((1, 2))
    assert encode(OrderedDict([(1, 2)])) == encode({1: 2})


def test_bool_and_none_are_atoms_not_integers() -> None:
    # bool is an int subclass: it must be checked first.
    assert encode(True) == b"\x83w\x04true"
    assert encode(False) == b"\x83w\x05false"
    assert encode(None) == b"\x83w\x03nil"
    assert encode(Atom("true")) == encode(True)
    assert decode(encode([True, 1]))[0] is True


def test_decode_accepts_any_buffer() -> None:
    data = encode({Atom("a"): [1, 2.5]})
    for buffer in (data, bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert decode(buffer) == {Atom("a"): [1, 2.5]}
    # A decoded binary is a copy, not a view of the caller's (mutable) buffer.
    source = bytearray(encode(b"abc"))
    result = decode(source)
    source[-1] = ord("z")
    assert result == b"abc"


@pytest.mark.parametrize("value", ["abc", 5, None, [131, 97, 1]])
def test_decode_refuses_non_buffers(value: object) -> None:
    with pytest.raises(TypeError):
        decode(value)  # type: ignore[arg-type]


def test_atom_is_a_distinct_str() -> None:
    atom = Atom("jpg")
    assert atom == "jpg"
    assert hash(atom) == hash("jpg")
    assert {"jpg": 1}[atom] == 1
    assert isinstance(atom, str)
    assert not isinstance("jpg", Atom)
    assert repr(atom) == "Atom('jpg')"
    assert repr(Atom("it's")) == 'Atom("it\'s")'
    assert repr([Atom("a")]) == "[Atom('a')]"


def test_decoded_atoms_and_binaries_have_distinct_types() -> None:
    atom, binary = decode(encode((Atom("jpg"), "jpg")))
    assert type(atom) is Atom
    assert type(binary) is bytes


def test_atoms_named_like_python_constants_decode_as_the_constants() -> None:
    # Atom("nil") and None are the same Erlang term, so only None comes back.
    assert decode(encode(Atom("nil"))) is None
    assert decode(encode(Atom("true"))) is True
    assert decode(encode(Atom("undefined"))) == Atom("undefined")


@pytest.mark.parametrize(
    "data",
    [b"\x83w\x04true", b"\x83v\x00\x04true", b"\x83d\x00\x04true", b"\x83s\x04true"],
    ids=["SMALL_ATOM_UTF8", "ATOM_UTF8", "ATOM", "SMALL_ATOM"],
)
def test_true_in_every_atom_encoding_is_python_true(data: bytes) -> None:
    assert decode(data) is True
    assert decode(data.replace(b"\x04true", b"\x05false")) is False
    assert decode(data.replace(b"\x04true", b"\x03nil")) is None


def test_latin1_and_utf8_atoms_with_the_same_bytes_stay_distinct() -> None:
    # The atom cache is keyed by raw bytes; it must not mix the two encodings.
    for _ in range(2):
        assert decode(b"\x83w\x02\xc3\xa9") == Atom("é")
        assert decode(b"\x83d\x00\x02\xc3\xa9") == Atom("Ã©")
        assert decode(b"\x83d\x00\x01\xe9") == Atom("é")
        assert decode(b"\x83s\x01\xe9") == Atom("é")


def test_node_and_module_names_stay_atoms_even_when_special() -> None:
    pid = decode(b"\x83X" + b"w\x03nil" + u32(1) + u32(2) + u32(3))
    assert pid == Pid(Atom("nil"), 1, 2, 3)
    assert type(pid.node) is Atom
    export = decode(b"\x83q" + b"w\x04true" + b"d\x00\x05false" + b"a\x00")
    assert export == Export(Atom("true"), Atom("false"), 0)
    assert type(export.module) is Atom
    assert type(export.function) is Atom


def test_negative_zero_keeps_its_sign() -> None:
    assert math.copysign(1.0, decode(encode(-0.0))) == -1.0


def test_map_order_is_kept() -> None:
    keys = [Atom("z"), 3, Atom("a"), b"m"]
    data = encode(dict.fromkeys(keys, 0))
    assert list(decode(data)) == keys


def test_list_tails_that_are_lists_are_proper() -> None:
    # [1 | [2]] and [1 | 'ab'] are ordinary lists the VM never writes this way.
    assert decode(b"\x83" + b"l" + u32(1) + b"a\x01" + raw_list(b"a\x02")) == [1, 2]
    assert decode(b"\x83" + b"l" + u32(1) + b"a\x01" + b"k\x00\x02ab") == [1, 97, 98]
    assert decode(b"\x83" + b"l" + u32(1) + b"a\x01" + b"k\x00\x00") == [1]


# --- exact encodings ----------------------------------------------------------------------

NODE_BYTES = b"w\x0dnonode@nohost"

# (value, expected bytes): the byte layouts term_to_binary(T, [{minor_version, 2}])
# writes, also checked against the running VM below when Erlang is installed.
LAYOUTS: list[tuple[object, bytes]] = [
    (0, b"\x83a\x00"),
    (255, b"\x83a\xff"),
    (256, b"\x83b\x00\x00\x01\x00"),
    (-1, b"\x83b\xff\xff\xff\xff"),
    (2**31, b"\x83n\x04\x00\x00\x00\x00\x80"),
    (-(2**31) - 1, b"\x83n\x04\x01\x01\x00\x00\x80"),
    (2**64, b"\x83n\x09\x00" + bytes(8) + b"\x01"),
    (2**2048, b"\x83o" + u32(257) + b"\x00" + bytes(256) + b"\x01"),
    (1.5, b"\x83F" + struct.pack(">d", 1.5)),
    (Atom("ok"), b"\x83w\x02ok"),
    (Atom("ア" * 100), b"\x83v" + u16(300) + ("ア" * 100).encode()),
    ("héllo", b"\x83m" + u32(6) + "héllo".encode()),
    (b"", b"\x83m" + u32(0)),
    ([], b"\x83j"),
    ([1, 2], b"\x83k\x00\x02\x01\x02"),
    ([True], b"\x83l" + u32(1) + b"w\x04true" + b"j"),
    ([256], b"\x83l" + u32(1) + b"b" + u32(256) + b"j"),
    ((), b"\x83h\x00"),
    ((1, Atom("a")), b"\x83h\x02a\x01w\x01a"),
    (tuple([0] * 256), b"\x83i" + u32(256) + b"a\x00" * 256),
    ({}, b"\x83t" + u32(0)),
    ({Atom("a"): 1}, b"\x83t" + u32(1) + b"w\x01aa\x01"),
    (Pid(NODE, 9, 0, 0), b"\x83X" + NODE_BYTES + u32(9) + u32(0) + u32(0)),
    (Port(NODE, 5, 0), b"\x83Y" + NODE_BYTES + u32(5) + u32(0)),
    (Port(NODE, 2**40, 3), b"\x83x" + NODE_BYTES + (2**40).to_bytes(8, "big") + u32(3)),
    # The VM's cut-over to V4_PORT_EXT is at 28 bits, not 32.
    (Port(NODE, 2**28 - 1, 0), b"\x83Y" + NODE_BYTES + u32(2**28 - 1) + u32(0)),
    (Port(NODE, 2**28, 0), b"\x83x" + NODE_BYTES + (2**28).to_bytes(8, "big") + u32(0)),
    (
        Reference(NODE, 0, (0x68A5, 0xF2680001, 0x2B4C367B)),
        b"\x83Z\x00\x03" + NODE_BYTES + u32(0) + bytes.fromhex("000068a5 f2680001 2b4c367b"),
    ),
    (Export(Atom("lists"), Atom("map"), 2), b"\x83qw\x05listsw\x03mapa\x02"),
]


@pytest.mark.parametrize(("value", "expected"), LAYOUTS, ids=[repr(v)[:30] for v, _ in LAYOUTS])
def test_exact_layout(value: object, expected: bytes) -> None:
    assert encode(value) == expected
    assert_same(decode(expected), as_decoded(value))


def test_large_binaries_have_the_same_layout() -> None:
    # Large binaries take another path (joined at the end rather than copied in).
    blob = bytes(range(256)) * 1000
    assert encode(blob) == b"\x83m" + u32(len(blob)) + blob
    term = [bytearray(blob), "é" * 40_000, memoryview(blob)[::2], Atom("end"), blob]
    expected = [blob, ("é" * 40_000).encode(), blob[::2], Atom("end"), blob]
    data = encode(term)
    assert_same(decode(data), expected)
    assert data == encode(expected)


def test_lists_of_bytes_become_strings_up_to_65535_elements() -> None:
    # Like the VM: STRING_EXT holds at most 65535 bytes, longer lists are LIST_EXT.
    assert encode([7] * 65535)[:4] == b"\x83k\xff\xff"
    assert encode([7] * 65536)[:2] == b"\x83l"
    assert decode(encode([7] * 65536)) == [7] * 65536


# --- every tag, hand-built ----------------------------------------------------------------

N_AT_H = b"w\x03n@h"
# One term holding every tag the decoder accepts, including the old formats the
# encoder never writes (ATOM_EXT, FLOAT_EXT, PID_EXT, REFERENCE_EXT, ...).
EVERY_TAG_BODY = raw_list(
    b"a\x05",  # SMALL_INTEGER_EXT
    b"b" + struct.pack(">i", -5),  # INTEGER_EXT
    b"n\x02\x01\x00\x01",  # SMALL_BIG_EXT
    b"o" + u32(2) + b"\x00\x00\x01",  # LARGE_BIG_EXT
    b"n\x03\x00\x05\x00\x00",  # SMALL_BIG_EXT with leading zero digits
    b"F" + struct.pack(">d", 1.5),  # NEW_FLOAT_EXT
    b"c" + b"1.50000000000000000000e+00".ljust(31, b"\0"),  # FLOAT_EXT
    b"w\x02ok",  # SMALL_ATOM_UTF8_EXT
    b"v\x00\x02ok",  # ATOM_UTF8_EXT
    b"d\x00\x02ok",  # ATOM_EXT
    b"s\x02ok",  # SMALL_ATOM_EXT
    b"d\x00\x04true",
    b"h\x01a\x01",  # SMALL_TUPLE_EXT
    b"i" + u32(1) + b"a\x01",  # LARGE_TUPLE_EXT
    b"j",  # NIL_EXT
    b"k\x00\x02ab",  # STRING_EXT
    b"l" + u32(1) + b"a\x01" + b"k\x00\x01b",  # LIST_EXT with a string tail
    b"m" + u32(2) + b"hi",  # BINARY_EXT
    b"M" + u32(1) + b"\x08z",  # BIT_BINARY_EXT, whole bytes
    b"t" + u32(1) + b"w\x01k" + b"a\x01",  # MAP_EXT
    b"X" + N_AT_H + u32(1) + u32(2) + u32(3),  # NEW_PID_EXT
    b"g" + N_AT_H + u32(1) + u32(2) + b"\x03",  # PID_EXT
    b"Z" + u16(2) + N_AT_H + u32(3) + u32(4) + u32(5),  # NEWER_REFERENCE_EXT
    b"r" + u16(1) + N_AT_H + b"\x03" + u32(4),  # NEW_REFERENCE_EXT
    b"e" + N_AT_H + u32(4) + b"\x03",  # REFERENCE_EXT
    b"x" + N_AT_H + (5).to_bytes(8, "big") + u32(3),  # V4_PORT_EXT
    b"Y" + N_AT_H + u32(5) + u32(3),  # NEW_PORT_EXT
    b"f" + N_AT_H + u32(5) + b"\x03",  # PORT_EXT
    b"q" + b"w\x05lists" + b"w\x03map" + b"a\x02",  # EXPORT_EXT
)
EVERY_TAG = b"\x83" + EVERY_TAG_BODY
EVERY_TAG_VALUE = [
    5,
    -5,
    -256,
    256,
    5,
    1.5,
    1.5,
    *[Atom("ok")] * 4,
    True,
    (1,),
    (1,),
    [],
    [97, 98],
    [1, 98],
    b"hi",
    b"z",
    {Atom("k"): 1},
    Pid(Atom("n@h"), 1, 2, 3),
    Pid(Atom("n@h"), 1, 2, 3),
    Reference(Atom("n@h"), 3, (4, 5)),
    Reference(Atom("n@h"), 3, (4,)),
    Reference(Atom("n@h"), 3, (4,)),
    Port(Atom("n@h"), 5, 3),
    Port(Atom("n@h"), 5, 3),
    Port(Atom("n@h"), 5, 3),
    Export(Atom("lists"), Atom("map"), 2),
]


def test_every_tag_decodes() -> None:
    assert_same(decode(EVERY_TAG), EVERY_TAG_VALUE)


def test_compressed_term_decodes() -> None:
    assert_same(decode(compressed(EVERY_TAG_BODY)), EVERY_TAG_VALUE)


@pytest.mark.parametrize("data", [EVERY_TAG, compressed(EVERY_TAG_BODY)], ids=["plain", "zlib"])
def test_every_truncation_is_a_decode_error(data: bytes) -> None:
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:end])


def test_random_corruption_raises_only_decode_error() -> None:
    rng = random.Random(1234)
    samples = [EVERY_TAG, compressed(EVERY_TAG_BODY), encode(ROUND_TRIPS["nested"])]
    decoded = 0
    for _ in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(1, len(data))
            action = rng.random()
            if action < 0.6:
                data[i] = rng.randrange(256)
            elif action < 0.8:
                del data[i]
            else:
                data.insert(i, rng.randrange(256))
        try:
            decode(data)
            decoded += 1
        except DecodeError:
            pass
    # Mostly rejected, but some mutations (a changed digit) stay valid.
    assert 0 < decoded < 3000


def test_random_bytes_raise_only_decode_error() -> None:
    rng = random.Random(99)
    for _ in range(3000):
        data = b"\x83" + rng.randbytes(rng.randint(0, 12))
        try:
            decode(data)
        except DecodeError:
            pass


# --- malformed input ----------------------------------------------------------------------

MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "only_version": b"\x83",
    "wrong_version": b"\x82a\x01",
    "no_version": b"a\x01",
    "trailing_byte": b"\x83a\x01\x00",
    "trailing_term": encode([1]) + encode(2)[1:],
    "unknown_tag_0": b"\x83\x00",
    "unknown_tag_255": b"\x83\xff",
    "atom_cache_ref": b"\x83R\x00",
    "new_fun": b"\x83p" + u32(5) + b"\x00" * 30,
    "fun": b"\x83u" + u32(0) + b"\x00" * 30,
    "local_ext": b"\x83y" + b"\x00" * 30,
    "nested_compressed": b"\x83l" + u32(1) + compressed(b"a\x01")[1:] + b"j",
    "improper_list": b"\x83l" + u32(1) + b"a\x01a\x02",
    "improper_list_empty_tail_binary": b"\x83l" + u32(1) + b"a\x01m" + u32(0),
    "atom_invalid_utf8": b"\x83w\x01\xff",
    "atom_truncated_utf8": b"\x83v\x00\x02\xc3\x28",
    "atom_overlong_utf8": b"\x83w\x02\xc0\xaf",
    "atom_surrogate": b"\x83w\x03\xed\xa0\x80",
    "atom_utf8_256_chars": b"\x83v" + u16(256) + b"a" * 256,
    "atom_latin1_256_chars": b"\x83d" + u16(256) + b"a" * 256,
    "atom_truncated": b"\x83w\x05abc",
    "float_nan": b"\x83F" + struct.pack(">d", math.nan),
    "float_inf": b"\x83F" + struct.pack(">d", math.inf),
    "old_float_inf": b"\x83c" + b"inf".ljust(31, b"\0"),
    "old_float_garbage": b"\x83c" + b"1.5x".ljust(31, b"\0"),
    "old_float_integer": b"\x83c" + b"1".ljust(31, b"\0"),
    "old_float_huge": b"\x83c" + b"1.0e999".ljust(31, b"\0"),
    "old_float_space": b"\x83c" + b" 1.5".ljust(31, b"\0"),
    "big_bad_sign": b"\x83n\x01\x02\x05",
    "bitstring": b"\x83M" + u32(1) + b"\x03\xe0",
    "bit_binary_zero_bits": b"\x83M" + u32(1) + b"\x00\xff",
    "bit_binary_nine_bits": b"\x83M" + u32(1) + b"\x09\xff",
    "bit_binary_empty_eight_bits": b"\x83M" + u32(0) + b"\x08",
    "map_duplicate_keys": b"\x83t" + u32(2) + b"a\x01a\x02a\x01a\x03",
    "map_keys_equal_in_python": b"\x83t"
    + u32(2)
    + b"a\x01a\x02F"
    + struct.pack(">d", 1)
    + b"a\x03",
    "map_true_and_one": b"\x83t" + u32(2) + b"a\x01a\x02w\x04truea\x03",
    "map_list_key": b"\x83t" + u32(1) + b"k\x00\x02ab" + b"a\x01",
    "map_map_key": b"\x83t" + u32(1) + b"t" + u32(0) + b"a\x01",
    "map_tuple_with_list_key": b"\x83t" + u32(1) + b"h\x01j" + b"a\x01",
    "reference_no_ids": b"\x83Z" + u16(0) + N_AT_H + u32(0),
    "reference_six_ids": b"\x83Z" + u16(6) + N_AT_H + u32(0) + u32(1) * 6,
    "pid_node_not_atom": b"\x83X" + b"a\x01" + u32(1) + u32(2) + u32(3),
    "port_node_binary": b"\x83Y" + b"m" + u32(1) + b"n" + u32(1) + u32(2),
    "export_arity_not_int": b"\x83qw\x01mw\x01fw\x01a",
    "export_arity_negative": b"\x83qw\x01mw\x01fb" + struct.pack(">i", -1),
    "export_arity_256": b"\x83qw\x01mw\x01fb" + u32(256),
    "compressed_size_zero": compressed(b"", declared=0),
    "compressed_size_too_small": compressed(b"a\x01\x02", declared=2),
    "compressed_size_too_large": compressed(b"a\x01", declared=3),
    "compressed_bad_zlib": b"\x83P" + u32(2) + b"\x78\x9cgarbage",
    "compressed_trailing": compressed(b"a\x01") + b"\x00",
    "compressed_trailing_term": compressed(b"a\x01a\x02", declared=4),
    "compressed_no_header": b"\x83P\x00\x00",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_decode_error_is_a_value_error_with_a_reason() -> None:
    assert issubclass(DecodeError, ValueError)
    with pytest.raises(DecodeError, match="trailing"):
        decode(b"\x83a\x01\x00")
    with pytest.raises(DecodeError, match="version"):
        decode(b"\x82a\x01")
    with pytest.raises(DecodeError, match="improper"):
        decode(MALFORMED["improper_list"])
    with pytest.raises(DecodeError, match="closures"):
        decode(MALFORMED["new_fun"])
    with pytest.raises(DecodeError, match="UTF-8"):
        decode(MALFORMED["atom_invalid_utf8"])


def test_valid_edge_cases_next_to_the_malformed_ones() -> None:
    assert decode(b"\x83M" + u32(0) + b"\x00") == b""
    assert decode(b"\x83v" + u16(255) + b"a" * 255) == Atom("a" * 255)
    assert decode(b"\x83n\x00\x00") == 0
    assert decode(b"\x83c" + b"-2.5e-3".ljust(31, b"\0")) == -2.5e-3
    # The VM reads FLOAT_EXT text up to the first NUL.
    assert decode(b"\x83c" + b"1.5\x007".ljust(31, b"\0")) == 1.5
    assert decode(b"\x83qw\x01mw\x01fb" + u32(255)) == Export(Atom("m"), Atom("f"), 255)
    assert decode(b"\x83h\x00") == ()
    assert decode(b"\x83i" + u32(0)) == ()


# Each claims far more than the input holds: refused before anything is allocated.
ABSURD_LENGTHS: dict[str, bytes] = {
    "binary": b"\x83m" + u32(2**32 - 1) + b"abc",
    "list": b"\x83l" + u32(2**32 - 1) + b"a\x01j",
    "list_tail": b"\x83l" + u32(1) + b"a\x01" + b"l" + u32(2**32 - 1) + b"a\x01j",
    "string_tail": b"\x83l" + u32(1) + b"a\x01" + b"k\xff\xff" + b"ab",
    "large_tuple": b"\x83i" + u32(2**32 - 1) + b"a\x01",
    "small_tuple": b"\x83h\xff" + b"a\x01",
    "map": b"\x83t" + u32(2**32 - 1) + b"a\x01a\x02",
    "large_big": b"\x83o" + u32(2**32 - 1) + b"\x00\x01",
    "bit_binary": b"\x83M" + u32(2**32 - 1) + b"\x08abc",
    "string": b"\x83k\xff\xff" + b"ab",
    "atom_utf8": b"\x83v\xff\xff" + b"ab",
    "atom_latin1": b"\x83d\xff\xff" + b"ab",
    "reference_ids": b"\x83Z\xff\xff" + N_AT_H + u32(0) + u32(1),
    "compressed": b"\x83P" + u32(2**32 - 1) + zlib.compress(b"a\x01"),
}


@pytest.mark.parametrize("data", ABSURD_LENGTHS.values(), ids=ABSURD_LENGTHS.keys())
def test_absurd_length_is_refused_without_allocating(data: bytes) -> None:
    assert peak_memory(raises_decode_error(data)) < 64 * 1024


def test_compressed_size_over_the_cap_is_refused() -> None:
    data = b"\x83P" + u32(MAX_UNCOMPRESSED_SIZE + 1) + zlib.compress(b"a\x01")
    with pytest.raises(DecodeError, match="cap"):
        decode(data)


def test_compressed_cap_applies_to_real_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    body = encode(b"x" * 5000)[1:]
    assert decode(compressed(body)) == b"x" * 5000
    monkeypatch.setattr(etf, "MAX_UNCOMPRESSED_SIZE", 4096)
    with pytest.raises(DecodeError, match="cap"):
        decode(compressed(body))


def test_zlib_bomb_inflates_no_further_than_declared() -> None:
    # 10 MB of zeros behind a header that declares 100 bytes.
    bomb = b"\x83P" + u32(100) + zlib.compress(bytes(10_000_000), 9)
    assert peak_memory(raises_decode_error(bomb)) < 1024 * 1024


def nested(opening: bytes, closing: bytes, depth: int) -> bytes:
    """``depth`` containers around the atom ``bottom``."""
    return b"\x83" + opening * depth + b"w\x06bottom" + closing * depth


CONTAINERS = {
    "small_tuple": (b"h\x01", b""),
    "large_tuple": (b"i" + u32(1), b""),
    "list": (b"l" + u32(1), b"j"),
    "map_value": (b"t" + u32(1) + b"a\x01", b""),
}


@pytest.mark.parametrize(("opening", "closing"), CONTAINERS.values(), ids=CONTAINERS.keys())
def test_nesting_up_to_the_limit_is_allowed(opening: bytes, closing: bytes) -> None:
    term = decode(nested(opening, closing, MAX_DEPTH))
    for _ in range(MAX_DEPTH):
        term = term[1] if isinstance(term, dict) else term[0]  # type: ignore[index]
    assert term == Atom("bottom")


@pytest.mark.parametrize(("opening", "closing"), CONTAINERS.values(), ids=CONTAINERS.keys())
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_nesting_beyond_the_limit_is_a_decode_error(
    opening: bytes, closing: bytes, depth: int
) -> None:
    with pytest.raises(DecodeError, match="nested deeper"):
        decode(nested(opening, closing, depth))


def test_deep_list_tails_are_one_flat_list() -> None:
    # [1 | [2 | [3 | ...]]]: the tails are read in a loop, so no nesting limit applies
    # and nothing is copied per level (the VM reads this as a proper list as well).
    levels = 100_000
    data = b"\x83" + b"".join(b"l" + u32(1) + b"b" + u32(i) for i in range(levels)) + b"j"
    assert decode(data) == list(range(levels))
    assert decode(b"\x83" + b"l" + u32(1) + b"a\x01" + b"k" + u16(2) + b"xy") == [1, 120, 121]
    with pytest.raises(DecodeError, match="improper"):
        decode(b"\x83" + b"l" + u32(1) + b"a\x01" + b"l" + u32(1) + b"a\x02" + b"a\x03")
    with pytest.raises(DecodeError):
        decode(b"\x83" + b"l" + u32(1) + b"a\x01" + b"l" + u32(5) + b"a\x02j")


# --- maps whose keys collide in Python's hash table ---------------------------------------

HASH_MODULUS = sys.hash_info.modulus  # 2**61 - 1: Python hashes integers modulo this


def map_of(keys: list[object]) -> bytes:
    """A MAP_EXT of ``keys`` (as Python encodes them), each mapped to ``[]``."""
    return b"\x83t" + u32(len(keys)) + b"".join(encode(k)[1:] + b"j" for k in keys)


# Families of distinct keys that share one Python hash (the first nine of each).
COLLIDING_KEYS: dict[str, list[object]] = {
    "big_ints": [k * HASH_MODULUS for k in range(1, 10)],
    "negative_big_ints": [-k * HASH_MODULUS for k in range(1, 10)],
    "tuples_of_big_ints": [(Atom("k"), k * HASH_MODULUS) for k in range(1, 10)],
    "floats": [2.0 ** (61 * k) for k in range(-4, 5)],
    "port_ids": [Port(NODE, k * HASH_MODULUS, 0) for k in range(9)],
}


@pytest.mark.parametrize("keys", COLLIDING_KEYS.values(), ids=COLLIDING_KEYS.keys())
def test_colliding_keys_up_to_the_cap_decode(keys: list[object]) -> None:
    assert len({hash(k) for k in keys}) == 1
    allowed = keys[: etf.MAX_KEYS_PER_HASH]
    assert list(decode(map_of(allowed))) == allowed
    assert decode(encode(dict.fromkeys(allowed, 1))) == dict.fromkeys(allowed, 1)


@pytest.mark.parametrize("keys", COLLIDING_KEYS.values(), ids=COLLIDING_KEYS.keys())
def test_colliding_keys_over_the_cap_are_refused(keys: list[object]) -> None:
    with pytest.raises(DecodeError, match="same Python hash"):
        decode(map_of(keys[: etf.MAX_KEYS_PER_HASH + 1]))


def test_a_map_of_colliding_keys_is_refused_at_the_first_key_over_the_cap() -> None:
    # It claims a million entries; only the first nine keys are real, then junk that
    # would be an error of its own. The collision error proves decoding stopped at the
    # ninth key: the dict never holds more than the cap of equal-hash keys.
    n = 1_000_000
    keys = COLLIDING_KEYS["big_ints"]
    body = b"".join(encode(k)[1:] + b"j" for k in keys[:-1]) + encode(keys[-1])[1:]
    data = b"\x83t" + u32(n) + body + b"\xff" * (2 * n)
    with pytest.raises(DecodeError, match="same Python hash"):
        decode(data)


def test_keys_that_cannot_be_steered_are_not_capped() -> None:
    # Small integers hash to themselves, atoms and binaries with a seeded hash: a big
    # map of them is normal and decodes whole.
    keys: list[object] = [*range(-5000, 5000), *(Atom(f"a{i}") for i in range(3000))]
    keys += [f"b{i}".encode() for i in range(3000)]
    assert list(decode(map_of(keys))) == keys
    # One small integer next to the capped big ones: a bounded chain still.
    keys = [0, *COLLIDING_KEYS["big_ints"][: etf.MAX_KEYS_PER_HASH]]
    assert list(decode(map_of(keys))) == keys


def test_unhashable_map_keys_are_a_decode_error() -> None:
    for key in ([1], {1: 2}, (1, [2])):
        with pytest.raises(DecodeError, match="not hashable"):
            decode(map_of([key]))


def test_deep_term_on_a_nearly_full_stack_is_a_decode_error() -> None:
    data = nested(b"h\x01", b"", 100)
    assert decode(data)
    with pytest.raises(DecodeError, match="stack"):
        near_recursion_limit(lambda: decode(data))


# --- encode errors ------------------------------------------------------------------------

UNENCODABLE: dict[str, tuple[object, str]] = {
    "object": (object(), "object"),
    "set": ({1, 2}, "set"),
    "frozenset": (frozenset(), "frozenset"),
    "complex": (1j, "complex"),
    "type": (int, "type"),
    "function": (len, "builtin_function_or_method"),
    "set_inside_list": ([1, {2}], "set"),
    "set_as_map_key": ({(1, frozenset()): 1}, "frozenset"),
    "nan": (math.nan, "nan"),
    "inf": (-math.inf, "inf"),
    "atom_256_chars": (Atom("a" * 256), "255 characters"),
    "atom_256_chars_unicode": (Atom("ア" * 256), "255 characters"),
    "atom_surrogate": (Atom("\ud800"), "UTF-8"),
    "str_surrogate": ("\udcff", "UTF-8"),
    "pid_negative_id": (Pid(NODE, -1, 0, 0), "Pid"),
    "pid_id_too_big": (Pid(NODE, 2**32, 0, 0), "Pid"),
    "pid_node_not_atom": (Pid(5, 1, 0, 0), "Pid.node"),  # type: ignore[arg-type]
    "pid_node_too_long": (Pid(Atom("n" * 256), 1, 0, 0), "255 characters"),
    "reference_no_ids": (Reference(NODE, 0, ()), "1..5 ids"),
    "reference_six_ids": (Reference(NODE, 0, (1,) * 6), "1..5 ids"),
    "reference_id_too_big": (Reference(NODE, 0, (2**32,)), "Reference"),
    "port_id_too_big": (Port(NODE, 2**64, 0), "Port"),
    "export_arity_256": (Export(Atom("m"), Atom("f"), 256), "arity"),
    "export_function_not_atom": (Export(Atom("m"), b"f", 1), "Export.function"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize(("value", "message"), UNENCODABLE.values(), ids=UNENCODABLE.keys())
def test_unencodable_value_is_an_encode_error(value: object, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode(value)


def test_encode_error_is_a_value_error() -> None:
    assert issubclass(EncodeError, ValueError)
    with pytest.raises(ValueError, match="type set"):
        encode({1})


def test_atom_of_255_characters_is_the_longest_allowed() -> None:
    assert decode(encode(Atom("ア" * 255))) == Atom("ア" * 255)
    assert decode(encode(Atom("a" * 255))) == Atom("a" * 255)


def test_encode_nesting_limit() -> None:
    term: object = Atom("bottom")
    for _ in range(MAX_DEPTH):
        term = [term]
    assert decode(encode(term)) == term
    with pytest.raises(EncodeError, match="nested deeper"):
        encode([term])
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="nested deeper"):
        encode(loop)


def test_deep_encode_on_a_nearly_full_stack_is_an_encode_error() -> None:
    term: object = Atom("bottom")
    for _ in range(100):
        term = (term,)
    with pytest.raises(EncodeError, match="stack"):
        near_recursion_limit(lambda: encode(term))


# --- against the real VM ------------------------------------------------------------------

requires_beam = pytest.mark.skipif(
    shutil.which("erl") is None or shutil.which("elixir") is None,
    reason="Erlang/Elixir not installed (erl or elixir not on PATH)",
)

# (name, Elixir expression, expected decoded value)
FROM_BEAM: list[tuple[str, str, object]] = [
    ("zero", "0", 0),
    ("byte_max", "255", 255),
    ("int_256", "256", 256),
    ("minus_one", "-1", -1),
    ("int32_max", "2_147_483_647", 2**31 - 1),
    ("int32_min", "-2_147_483_648", -(2**31)),
    ("big_2_31", "2_147_483_648", 2**31),
    ("big_below_int32", "-2_147_483_649", -(2**31) - 1),
    ("big_2_64", str(2**64), 2**64),
    ("big_neg_2_200", str(-(2**200)), -(2**200)),
    ("large_big", str(2**2100), 2**2100),
    ("float", "1.5", 1.5),
    ("float_pi", "3.141592653589793", math.pi),
    ("float_negative", "-2.5e-300", -2.5e-300),
    ("float_tiny", "5.0e-324", 5e-324),
    ("float_huge", "1.7976931348623157e308", 1.7976931348623157e308),
    ("true", "true", True),
    ("false", "false", False),
    ("nil", "nil", None),
    ("atom", ":jpg", Atom("jpg")),
    ("atom_quoted", ':"hello world"', Atom("hello world")),
    ("atom_latin1", ':"café"', Atom("café")),
    ("atom_utf8", ':"アトム"', Atom("アトム")),
    # Elixir 1.14's parser limits atom literals to 255 bytes; the VM allows 255 characters.
    ("atom_utf8_long", 'String.to_atom(String.duplicate("ア", 100))', Atom("ア" * 100)),
    ("atom_255", ":" + "a" * 255, Atom("a" * 255)),
    ("binary", '"héllo"', "héllo".encode()),
    ("binary_empty", '""', b""),
    ("binary_bytes", "<<0, 255, 1>>", b"\x00\xff\x01"),
    ("binary_large", ':binary.copy("ab", 50_000)', b"ab" * 50_000),
    ("list_empty", "[]", []),
    ("list", "[1, 300, :a, -1]", [1, 300, Atom("a"), -1]),
    ("charlist", "[104, 105]", [104, 105]),
    ("charlist_unicode", "[97, 0x30A2]", [97, 0x30A2]),
    ("list_nested", "[[], [[]], [[1, :x]]]", [[], [[]], [[1, Atom("x")]]]),
    ("list_long", "Enum.to_list(1..70_000)", list(range(1, 70_001))),
    ("tuple_empty", "{}", ()),
    ("tuple", '{:ok, 1, "x"}', (Atom("ok"), 1, b"x")),
    ("tuple_large", "List.to_tuple(Enum.to_list(1..300))", tuple(range(1, 301))),
    ("map_empty", "%{}", {}),
    ("map_one", "%{a: 1}", {Atom("a"): 1}),
    (
        "map_sample",
        "%{max_pixels: 50_000_000, quality: 85, fit: :fill, allowed_formats: [:jpg, :png]}",
        {
            Atom("max_pixels"): 50_000_000,
            Atom("quality"): 85,
            Atom("fit"): Atom("fill"),
            Atom("allowed_formats"): [Atom("jpg"), Atom("png")],
        },
    ),
    (
        "map_any_keys",
        '%{1 => :int, "bin" => :binary, {:t, 1} => :tuple, nil => [1], 2.5 => :float}',
        {
            1: Atom("int"),
            b"bin": Atom("binary"),
            (Atom("t"), 1): Atom("tuple"),
            None: [1],
            2.5: Atom("float"),
        },
    ),
    ("map_large", "Map.new(1..40, &{&1, &1 * &1})", {i: i * i for i in range(1, 41)}),
    (
        "nested",
        '%{list: [%{x: {1.5, "y", [nil]}}], deep: {{{{:bottom}}}}}',
        {
            Atom("list"): [{Atom("x"): (1.5, b"y", [None])}],
            Atom("deep"): ((((Atom("bottom"),),),),),
        },
    ),
    ("export", "&:lists.map/2", Export(Atom("lists"), Atom("map"), 2)),
]
# Terms the VM makes up at run time: checked against its inspect/1 text.
FROM_BEAM_DYNAMIC: list[tuple[str, str]] = [
    ("pid", "self()"),
    ("reference", "make_ref()"),
    ("port", "hd(Port.list())"),
    ("pid_and_ref_in_map", "%{self() => {make_ref(), hd(Port.list())}}"),
]
# Terms the codec refuses, as the VM writes them.
FROM_BEAM_REFUSED: list[tuple[str, str]] = [
    ("closure", "fn -> :ok end"),
    ("bitstring", "<<1::3>>"),
    ("improper_list", "[1 | 2]"),
    ("keys_equal_in_python", "%{1 => :a, 1.0 => :b}"),
    ("keys_true_and_one", "%{1 => :a, true => :b}"),
]

# (name, Python value, the same term as an Elixir literal, Elixir's inspect/1 of it)
TO_BEAM: list[tuple[str, object, str, str]] = [
    ("nil", None, "nil", "nil"),
    ("bools", [True, False], "[true, false]", "[true, false]"),
    ("atom", Atom("jpg"), ":jpg", ":jpg"),
    ("atom_utf8", Atom("アトム"), ':"アトム"', ":アトム"),
    (
        "atom_utf8_long",
        Atom("ア" * 100),
        'String.to_atom(String.duplicate("ア", 100))',
        ":" + "ア" * 100,
    ),
    ("str", "héllo", '"héllo"', '"héllo"'),
    ("bytes", b"\x00\xff", "<<0, 255>>", "<<0, 255>>"),
    (
        "ints",
        [0, 255, 256, -1, 2**31, -(2**31) - 1, 2**64, -(2**200)],
        f"[0, 255, 256, -1, {2**31}, {-(2**31) - 1}, {2**64}, {-(2**200)}]",
        f"[0, 255, 256, -1, {2**31}, {-(2**31) - 1}, {2**64}, {-(2**200)}]",
    ),
    ("large_big", 2**2100, str(2**2100), str(2**2100)),
    (
        "floats",
        [1.5, -2.25, 1e300, 5e-324],
        "[1.5, -2.25, 1.0e300, 5.0e-324]",
        "[1.5, -2.25, 1.0e300, 5.0e-324]",
    ),
    ("byte_list", [1, 2, 3], "[1, 2, 3]", "[1, 2, 3]"),
    ("list", [1, Atom("a"), b"b", [2.5]], '[1, :a, "b", [2.5]]', '[1, :a, "b", [2.5]]'),
    ("empties", [[], (), {}, b""], '[[], {}, %{}, ""]', '[[], {}, %{}, ""]'),
    ("tuple", (Atom("ok"), 1), "{:ok, 1}", "{:ok, 1}"),
    (
        "tuple_large",
        tuple(range(300)),
        "List.to_tuple(Enum.to_list(0..299))",
        "{" + ", ".join(map(str, range(300))) + "}",
    ),
    (
        "map",
        {Atom("quality"): 85, Atom("fit"): Atom("fill")},
        "%{quality: 85, fit: :fill}",
        "%{fit: :fill, quality: 85}",
    ),
    (
        "map_any_keys",
        {1: Atom("int"), b"bin": Atom("binary"), (Atom("t"), 1): Atom("tuple")},
        '%{1 => :int, "bin" => :binary, {:t, 1} => :tuple}',
        '%{1 => :int, {:t, 1} => :tuple, "bin" => :binary}',
    ),
    ("export", Export(Atom("lists"), Atom("map"), 2), "&:lists.map/2", "&:lists.map/2"),
    (
        "nested",
        {Atom("list"): [{Atom("x"): (1.5, "y")}], Atom("none"): None},
        '%{list: [%{x: {1.5, "y"}}], none: nil}',
        '%{list: [%{x: {1.5, "y"}}], none: nil}',
    ),
]

BEAM_SCRIPT = """\
hex = &Base.encode16/1
forward = [
{forward}
]
for {{name, term}} <- forward do
  IO.puts(Enum.join(["F", name,
    hex.(:erlang.term_to_binary(term, minor_version: 2)),
    hex.(:erlang.term_to_binary(term, minor_version: 1)),
    hex.(:erlang.term_to_binary(term, minor_version: 0)),
    hex.(:erlang.term_to_binary(term, [:compressed])),
    hex.(inspect(term, limit: :infinity, printable_limit: :infinity))], " "))
end
expected = %{{
{expected}
}}
for arg <- System.argv() do
  [name, b64] = String.split(arg, "=", parts: 2)
  try do
    # :safe, like the NIF: every atom used must already exist (they are all above).
    term = :erlang.binary_to_term(Base.decode64!(b64), [:safe])
    IO.puts(Enum.join(["R", name, to_string(term === Map.fetch!(expected, name)),
      hex.(inspect(term, limit: :infinity, printable_limit: :infinity)),
      hex.(:erlang.term_to_binary(term, minor_version: 2))], " "))
  rescue
    e -> IO.puts(Enum.join(["E", name, hex.(Exception.message(e))], " "))
  end
end
"""


@dataclass(frozen=True)
class FromBeam:
    v2: bytes  # term_to_binary(t, minor_version: 2), the OTP 26+ default
    v1: bytes  # OTP 25's default: Latin-1 atoms as ATOM_EXT
    v0: bytes  # floats as FLOAT_EXT text
    compressed: bytes
    inspect: str


@dataclass(frozen=True)
class ToBeam:
    matches: bool  # binary_to_term(ours, [:safe]) === the Elixir literal
    inspect: str
    v2: bytes  # the VM's own encoding of what it decoded


@dataclass(frozen=True)
class BeamRun:
    from_beam: dict[str, FromBeam]
    to_beam: dict[str, ToBeam | str]


@pytest.fixture(scope="module")
def beam(tmp_path_factory: pytest.TempPathFactory) -> BeamRun:
    """One VM run for all the cross-checks (each start costs a good fraction of a second)."""
    forward = [(n, e) for n, e, _ in FROM_BEAM] + FROM_BEAM_DYNAMIC + FROM_BEAM_REFUSED
    script = BEAM_SCRIPT.format(
        forward=",\n".join(f'  {{"{name}", {expr}}}' for name, expr in forward),
        expected=",\n".join(f'  "{name}" => {literal}' for name, _, literal, _ in TO_BEAM),
    )
    path: Path = tmp_path_factory.mktemp("etf") / "cross_check.exs"
    path.write_text(script, encoding="utf-8")
    args = [f"{name}={base64.b64encode(encode(value)).decode()}" for name, value, _, _ in TO_BEAM]
    run = subprocess.run(
        ["elixir", str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    from_beam: dict[str, FromBeam] = {}
    to_beam: dict[str, ToBeam | str] = {}
    for line in run.stdout.splitlines():
        kind, name, *fields = line.split(" ")
        if kind == "F":
            *encodings, text = map(bytes.fromhex, fields)
            from_beam[name] = FromBeam(*encodings, text.decode())
        elif kind == "R":
            to_beam[name] = ToBeam(
                fields[0] == "true", bytes.fromhex(fields[1]).decode(), bytes.fromhex(fields[2])
            )
        elif kind == "E":
            to_beam[name] = bytes.fromhex(fields[0]).decode()
    assert len(from_beam) == len(forward), run.stdout
    assert len(to_beam) == len(TO_BEAM), run.stdout
    return BeamRun(from_beam, to_beam)


@requires_beam
@pytest.mark.parametrize(
    ("name", "expected"), [(n, v) for n, _, v in FROM_BEAM], ids=[n for n, *_ in FROM_BEAM]
)
def test_beam_encodings_decode(beam: BeamRun, name: str, expected: object) -> None:
    vm = beam.from_beam[name]
    # Every format generation the VM can write, and its compressed form.
    for data in (vm.v2, vm.v1, vm.v0, vm.compressed):
        assert_same(decode(data), expected)


@requires_beam
@pytest.mark.parametrize("name", [n for n, *_ in FROM_BEAM + FROM_BEAM_DYNAMIC])
def test_beam_encodings_re_encode_byte_exactly(beam: BeamRun, name: str) -> None:
    # Map key order survives decoding, so even multi-key maps come back identical.
    data = beam.from_beam[name].v2
    assert encode(decode(data)) == data


@requires_beam
def test_beam_compresses_some_cases(beam: BeamRun) -> None:
    # Otherwise the compressed cross-check above would prove nothing.
    assert beam.from_beam["tuple_large"].compressed[:2] == b"\x83P"
    assert beam.from_beam["list_long"].compressed[:2] == b"\x83P"


@requires_beam
def test_beam_old_formats_are_really_old(beam: BeamRun) -> None:
    assert beam.from_beam["atom"].v1[1] == etf.ATOM_EXT
    assert beam.from_beam["atom_latin1"].v1 == b"\x83d\x00\x04caf\xe9"
    assert beam.from_beam["float"].v0[1] == etf.FLOAT_EXT


@requires_beam
def test_beam_pid(beam: BeamRun) -> None:
    vm = beam.from_beam["pid"]
    pid = decode(vm.v2)
    assert isinstance(pid, Pid)
    assert type(pid.node) is Atom
    assert pid.node == "nonode@nohost"
    assert vm.inspect == f"#PID<0.{pid.id}.{pid.serial}>"
    assert decode(vm.v1) == pid


@requires_beam
def test_beam_reference(beam: BeamRun) -> None:
    vm = beam.from_beam["reference"]
    ref = decode(vm.v2)
    assert isinstance(ref, Reference)
    assert ref.node == NODE
    # inspect/1 shows the ids most significant first, the reverse of wire order.
    assert vm.inspect == "#Reference<0." + ".".join(map(str, reversed(ref.ids))) + ">"
    assert decode(vm.v1) == ref


@requires_beam
def test_beam_port(beam: BeamRun) -> None:
    vm = beam.from_beam["port"]
    port = decode(vm.v2)
    assert isinstance(port, Port)
    assert port.node == NODE
    assert vm.inspect == f"#Port<0.{port.id}>"


@requires_beam
def test_beam_pid_as_map_key(beam: BeamRun) -> None:
    ((pid, (ref, port)),) = decode(beam.from_beam["pid_and_ref_in_map"].v2).items()
    assert pid == decode(beam.from_beam["pid"].v2)
    assert isinstance(ref, Reference)
    assert port == decode(beam.from_beam["port"].v2)


@requires_beam
@pytest.mark.parametrize("name", [n for n, _ in FROM_BEAM_REFUSED])
def test_beam_terms_outside_the_mapping_are_refused(beam: BeamRun, name: str) -> None:
    vm = beam.from_beam[name]
    for data in (vm.v2, vm.v1, vm.compressed):
        with pytest.raises(DecodeError):
            decode(data)


@requires_beam
@pytest.mark.parametrize(
    ("name", "value", "inspected"),
    [(n, v, i) for n, v, _, i in TO_BEAM],
    ids=[n for n, *_ in TO_BEAM],
)
def test_python_encodings_read_by_beam(
    beam: BeamRun, name: str, value: object, inspected: str
) -> None:
    vm = beam.to_beam[name]
    assert isinstance(vm, ToBeam), f"binary_to_term([:safe]) failed: {vm}"
    assert vm.matches, f"the VM read {vm.inspect}"
    assert vm.inspect == inspected
    assert_same(decode(vm.v2), as_decoded(value))
    single_key_maps = all(len(d) <= 1 for d in _dicts(value))
    if single_key_maps:  # small maps are sorted by the VM, Python keeps insertion order
        assert encode(value) == vm.v2


def _dicts(value: object) -> Iterator[dict[object, object]]:
    if isinstance(value, dict):
        yield value
        for k, v in value.items():
            yield from _dicts(k)
            yield from _dicts(v)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _dicts(item)


# --- views and parts: large binaries without copies ---------------------------------------


def test_decode_with_views_lends_large_binaries_from_the_input() -> None:
    large = bytes(range(256)) * (etf.VIEW_AT // 256)
    data = encode((Atom("ok"), large, b"small", {Atom("k"): large + b"!"}))
    term = decode(data, views=True)
    assert isinstance(term, tuple)
    _, first, small, nested_map = term
    assert isinstance(first, memoryview) and first.readonly and first.obj is data
    assert first == large
    assert type(small) is bytes
    inner = nested_map[Atom("k")]
    assert isinstance(inner, memoryview) and inner.obj is data and inner == large + b"!"
    # Without views (the default), and just under the size, binaries are bytes.
    assert type(decode(data)[1]) is bytes
    assert type(decode(encode(large[:-1]), views=True)) is bytes


def test_decode_with_views_leaves_no_state_behind() -> None:
    large = b"x" * etf.VIEW_AT
    with pytest.raises(DecodeError):
        decode(encode([large])[:-1], views=True)
    assert type(decode(encode(large))) is bytes
    assert isinstance(decode(compressed(encode(large)[1:]), views=True), memoryview)


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_encode_parts_join_to_the_encoding(value: object) -> None:
    assert b"".join(etf.encode_parts(value)) == encode(value)


def test_encode_parts_hand_over_large_binaries_uncopied() -> None:
    large = bytearray(etf.VIEW_AT)
    view = memoryview(b"y" * (2 * etf.VIEW_AT))
    term = (1, large, [view, b"z" * 10])
    parts = etf.encode_parts(term)
    assert any(part is large for part in parts)
    assert any(part is view for part in parts)
    assert b"".join(parts) == encode(term)
    assert sum(len(p) for p in parts) == len(encode(term))


def test_decode_from_an_offset_reads_in_place() -> None:
    # A distribution packet: a control message, then the message, decoded where it
    # lies; a large binary comes back as a view of the packet itself.
    big = b"x" * (etf.VIEW_AT + 1)
    packet = b"\x70" + etf.encode((1, 2)) + etf.encode((Atom("a"), big))
    start = 1 + len(etf.encode((1, 2)))
    term = etf.decode(packet, views=True, start=start)
    assert isinstance(term, tuple) and term[0] == Atom("a")
    assert isinstance(term[1], memoryview) and term[1].obj is packet and term[1] == big
    with pytest.raises(etf.DecodeError):
        etf.decode(packet, start=len(packet))
    with pytest.raises(etf.DecodeError):
        etf.decode(packet, start=1 + 1)  # not at a term's version byte
