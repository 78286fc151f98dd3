"""mirage.etf for the distribution layer: improper lists on request, decode_prefix."""

from __future__ import annotations

import struct

import pytest

from mirage.etf import (
    Atom,
    DecodeError,
    EncodeError,
    ImproperList,
    Reference,
    decode,
    decode_prefix,
    encode,
)

NODE = Atom("a@b")
REF = Reference(NODE, 7, (1, 2, 3))


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


# [alias | Ref], as gen:call/4 makes its reply tag since OTP 24.
ALIAS_TAG = b"\x83l" + u32(1) + b"w\x05alias" + encode(REF)[1:]


def test_improper_list_is_refused_by_default() -> None:
    with pytest.raises(DecodeError, match="improper"):
        decode(ALIAS_TAG)


def test_improper_list_decodes_on_request() -> None:
    assert decode(ALIAS_TAG, improper_lists=True) == ImproperList((Atom("alias"),), REF)


def test_the_request_lasts_for_one_call_only() -> None:
    decode(ALIAS_TAG, improper_lists=True)
    with pytest.raises(DecodeError, match="improper"):
        decode(ALIAS_TAG)


def test_improper_list_nested_in_a_message_round_trips() -> None:
    message = (Atom("$gen_call"), (1, ImproperList((Atom("alias"),), REF)), [1, 2])
    data = encode(message)
    assert decode(data, improper_lists=True) == message
    assert encode(decode(data, improper_lists=True)) == data


def test_tail_made_of_list_cells_is_flattened() -> None:
    # [1 | [2 | 3]] written cell by cell is the same term as [1, 2 | 3].
    cells = b"\x83l" + u32(1) + b"a\x01" + b"l" + u32(1) + b"a\x02" + b"a\x03"
    assert decode(cells, improper_lists=True) == ImproperList((1, 2), 3)
    assert encode(ImproperList((1, 2), 3)) == b"\x83l" + u32(2) + b"a\x01a\x02a\x03"


def test_proper_lists_are_unchanged_when_improper_ones_are_allowed() -> None:
    assert decode(encode([1, [2, 3], "ab"]), improper_lists=True) == [1, [2, 3], b"ab"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (ImproperList((), 1), "at least one item"),
        (ImproperList((1,), [2]), "must not be a list"),
        (ImproperList((1,), ImproperList((2,), 3)), "must not be a list"),
    ],
)
def test_non_canonical_improper_lists_are_not_encoded(value: object, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode(value)


def test_decode_prefix_reads_one_term_of_several() -> None:
    control = encode((6, Atom("x"), Atom(""), Atom("mirage")))
    message = encode(ImproperList((Atom("alias"),), REF))
    data = control + message
    term, end = decode_prefix(data)
    assert (term, end) == ((6, Atom("x"), Atom(""), Atom("mirage")), len(control))
    assert decode_prefix(data[end:], improper_lists=True) == (
        ImproperList((Atom("alias"),), REF),
        len(message),
    )


def test_decode_prefix_errors_like_decode() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        decode_prefix(encode((1, 2))[:-1])
    with pytest.raises(DecodeError, match="version"):
        decode_prefix(b"\x82a\x01")
    with pytest.raises(DecodeError, match="improper"):
        decode_prefix(ALIAS_TAG)
