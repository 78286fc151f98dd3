"""mirage.etf: generated terms against a real VM, and mutated input against the decoder.

One ``erl`` runs for the module (see :class:`Echo`): it reads ``{packet, 4}`` frames on
stdin and writes ``term_to_binary(binary_to_term(Frame), [{minor_version, 2}])`` back,
or an empty frame when ``binary_to_term`` refuses the input.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirage.etf import (
    MAX_ATOM_CHARS,
    MAX_KEYS_PER_HASH,
    Atom,
    DecodeError,
    Export,
    Pid,
    Port,
    Reference,
    decode,
    encode,
)
from tests.test_etf import as_decoded, assert_same

HEADER = struct.Struct(">I")

ECHO_PROGRAM = """
Port = open_port({fd, 0, 1}, [binary, {packet, 4}, eof]),
Echo = fun Loop() ->
    receive
        {Port, {data, Frame}} ->
            Reply =
                try term_to_binary(binary_to_term(Frame), [{minor_version, 2}])
                catch _:_ -> <<>>
                end,
            port_command(Port, Reply),
            Loop();
        {Port, eof} ->
            halt(0)
    end
end,
Echo().
"""


class Echo:
    """A running ``erl`` that decodes and re-encodes each frame it is sent."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["erl", "-noinput", "-eval", ECHO_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def round_trip(self, data: bytes) -> bytes | None:
        """The VM's encoding of the term in ``data``; None if the VM refused it."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(HEADER.pack(len(data)) + data)
        self.process.stdin.flush()
        header = self.process.stdout.read(HEADER.size)
        assert len(header) == HEADER.size, "erl exited"
        (n,) = HEADER.unpack(header)
        reply = self.process.stdout.read(n)
        return reply or None

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # end of input: the program halts
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def vm() -> Iterator[Echo]:
    if shutil.which("erl") is None:
        pytest.skip("Erlang not installed (erl not on PATH)")
    echo = Echo()
    try:
        assert echo.round_trip(encode(1)) == encode(1), "the echo program does not answer"
        yield echo
    finally:
        echo.close()


# --- strategies ---------------------------------------------------------------------------

HASH_MODULUS = sys.hash_info.modulus
SPECIAL = {"true", "false", "nil"}  # these names decode as True, False, None

atoms = (
    st.text(st.characters(exclude_categories=("Cs",)), max_size=MAX_ATOM_CHARS)
    .filter(lambda name: name not in SPECIAL)
    .map(Atom)
)
# Nodes other than the VM's own: it only accepts pids of its own node that could exist.
nodes = st.sampled_from([Atom("a@b"), Atom("mirage@localhost"), Atom("n@h")])
u32 = st.integers(0, 2**32 - 1)
integers = st.one_of(
    st.integers(0, 255),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**64), 2**64),
    st.integers(-(2**2100), 2**2100),
    # Equal Python hashes (see MAX_KEYS_PER_HASH): allowed in moderation.
    st.integers(1, 4).map(lambda k: k * HASH_MODULUS),
)
floats = st.floats(allow_nan=False, allow_infinity=False)
pids = st.builds(Pid, nodes, u32, u32, u32)
references = st.builds(Reference, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple))
ports = st.builds(Port, nodes, st.integers(0, 2**64 - 1), u32)
exports = st.builds(Export, atoms, atoms, st.integers(0, 255))

# Map keys: hashable values only, and no str (it would equal the same bytes once decoded).
keys = st.recursive(
    st.one_of(st.none(), st.booleans(), integers, floats, atoms, st.binary(max_size=8), pids),
    lambda inner: st.tuples(inner, inner),
    max_leaves=4,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    integers,
    floats,
    atoms,
    st.binary(max_size=64),
    st.binary(max_size=16).map(bytearray),
    st.text(max_size=16),
    pids,
    references,
    ports,
    exports,
)
terms = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
        # Lists of bytes, which both sides write as STRING_EXT.
        st.lists(st.integers(0, 255), max_size=8),
    ),
    max_leaves=25,
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def multi_key_maps(value: object) -> bool:
    """Whether ``value`` holds a map of two or more keys (whose order the VM chooses)."""
    if isinstance(value, dict):
        return len(value) > 1 or any(multi_key_maps(x) for kv in value.items() for x in kv)
    if isinstance(value, (list, tuple)):
        return any(multi_key_maps(x) for x in value)
    return False


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(value=terms)
def test_generated_terms_round_trip_through_the_vm(vm: Echo, value: object) -> None:
    ours = encode(value)
    theirs = vm.round_trip(ours)
    assert theirs is not None, f"binary_to_term refused encode({value!r})"
    assert_same(decode(theirs), as_decoded(value))
    # Decoding keeps the VM's order of map keys, so re-encoding is byte-exact.
    assert encode(decode(theirs)) == theirs
    if not multi_key_maps(value):
        assert ours == theirs


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The encoding of a generated term with a few bytes changed, dropped or added."""
    data = bytearray(encode(draw(terms)))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(1, len(data)))
        kind = draw(st.sampled_from(["set", "delete", "insert"]))
        if kind == "set" and i < len(data):
            data[i] = draw(st.integers(0, 255))
        elif kind == "delete" and i < len(data):
            del data[i]
        else:
            data.insert(i, draw(st.integers(0, 255)))
    return bytes(data)


@PROPERTY
@given(data=mutated())
def test_mutated_input_is_refused_or_read_as_the_vm_reads_it(vm: Echo, data: bytes) -> None:
    try:
        term = decode(data)
    except DecodeError:
        return  # the only exception allowed
    # What the codec accepts, the VM accepts too, as the same term.
    theirs = vm.round_trip(data)
    assert theirs is not None, f"the VM refuses {data!r}, decoded as {term!r}"
    assert_same(decode(theirs), term)


@settings(max_examples=300, deadline=None)
@given(value=terms, cut=st.integers(0, 2**16))
def test_every_truncation_is_a_decode_error(value: object, cut: int) -> None:
    # ETF is self-delimiting: no proper prefix of a term is a whole term.
    data = encode(value)
    with pytest.raises(DecodeError):
        decode(data[: cut % len(data)])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        decode(b"\x83" + data)
    except DecodeError:
        pass


# --- maps of keys chosen to collide ---------------------------------------------------------


# Keys from families whose Python hashes coincide: integers congruent modulo the hash
# modulus (with or without the small one among them), tuples of such integers, and
# floats 2**(61 k), which all hash to 1. Up to 14 of each, around the cap of 8.
def family(make: Callable[[int], object], ks: range) -> st.SearchStrategy[list[object]]:
    return st.lists(st.sampled_from(ks), unique=True, max_size=14).map(
        lambda chosen: [make(k) for k in chosen]
    )


colliding_maps = st.tuples(
    family(lambda k: k * HASH_MODULUS, range(0, 20)),
    family(lambda k: k * HASH_MODULUS - 5, range(-19, 1)),
    family(lambda k: (Atom("t"), k * HASH_MODULUS), range(1, 20)),
    family(lambda k: 2.0 ** (61 * k), range(-16, 17)),
).flatmap(lambda families: st.permutations([k for f in families for k in f]))


@settings(max_examples=300, deadline=None)
@given(keys=colliding_maps)
def test_maps_of_colliding_keys_decode_iff_no_hash_is_used_too_often(keys: list[object]) -> None:
    data = b"\x83t" + HEADER.pack(len(keys)) + b"".join(encode(k)[1:] + b"j" for k in keys)
    # Only keys that are not small integers are counted (see etf._count_hash).
    counted = [k for k in keys if not (type(k) is int and -HASH_MODULUS < k < HASH_MODULUS)]
    per_hash = Counter(hash(k) for k in counted)
    if max(per_hash.values(), default=0) > MAX_KEYS_PER_HASH:
        with pytest.raises(DecodeError, match="same Python hash"):
            decode(data)
    else:
        assert list(decode(data)) == keys
