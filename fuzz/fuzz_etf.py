"""Coverage-guided fuzzing of the ETF codec (:mod:`mirage.etf`).

    python fuzz/fuzz_etf.py seeds DIR                 # write seed terms (needs erl)
    python fuzz/fuzz_etf.py [libFuzzer flags] CORPUS_DIR [SEED_DIR...]

``decode`` and ``decode_prefix`` on any bytes, with or without ``improper_lists``,
must answer a term or raise :class:`mirage.etf.DecodeError`, nothing else. A term
decoded must be the same with ``views=True`` and from ``decode_prefix``, must encode
(or raise :class:`mirage.etf.EncodeError`) to what ``encode_parts`` joins to, and
must decode again to an equal term.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from mirage import etf

# Terms as the VM writes them (term_to_binary), for every kind the codec reads: Port
# requests and replies (one with a binary large enough to decode as a view), pids,
# references, ports, funs, floats, big integers, improper lists, strings, bitstrings,
# maps, and compressed terms.
_ERL_TERMS = r"""
Pid = self(), Ref = make_ref(), [Port | _] = erlang:ports(),
Big = 1 bsl 200,
Terms = [
  {7, thumbnail, <<137, "PNG", 13, 10>>, #{width => 32, height => 24, fit => contain,
    max_pixels => 50000000, allowed_formats => [jpg, png, gif, webp, bmp, tiff]}, Pid},
  {7, {ok, <<1, 2, 3>>, {42, png, 32, 24}, nil}},
  {9, info, binary:copy(<<255, 216>>, 33000), #{}, Pid},
  {8, {error, decode_failed}}, {release, [1, 2, 3]}, {release_owner, Pid},
  {log, 2, <<"a warning">>}, Ref, Port, fun lists:map/2, 3.25, -0.0, 1.0e300,
  Big, -Big, 2147483648, -2147483649, 255, 256, -1, [1, 2 | 3], "a string",
  <<1:3>>, <<>>, [], {}, #{}, #{[1] => {2}, <<"k">> => #{a => b}},
  'atom with spaces', '\x{1F600}', lists:seq(1, 300), erlang:make_tuple(300, x)
],
lists:foreach(fun({I, T}) ->
    Name = io_lib:format("~s/erl-~3..0B", [Dir, I]),
    ok = file:write_file(Name ++ ".etf", term_to_binary(T)),
    ok = file:write_file(Name ++ "-z.etf", term_to_binary(T, [compressed, {minor_version, 1}]))
  end, lists:zip(lists:seq(1, length(Terms)), Terms)),
halt().
"""


def write_seeds(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    program = f'Dir = "{directory}", ' + _ERL_TERMS.strip()
    subprocess.run(["erl", "-noshell", "-eval", program], check=True, timeout=60)


def _has_nan(term: object) -> bool:
    if isinstance(term, float):
        return math.isnan(term)
    if isinstance(term, (list, tuple)):
        return any(_has_nan(t) for t in term)
    if isinstance(term, dict):
        return any(_has_nan(k) or _has_nan(v) for k, v in term.items())
    return False


def _same(a: object, b: object, what: str) -> None:
    if a != b:
        raise AssertionError(f"{what}: {a!r} != {b!r}")


def one_input(data: bytes) -> None:
    try:
        etf.decode_prefix(data)  # a term followed by anything: only DecodeError
    except etf.DecodeError:
        pass
    for improper in (False, True):
        try:
            term = etf.decode(data, improper_lists=improper)
        except etf.DecodeError:
            continue
        nan = _has_nan(term)  # NaN != NaN: nothing to compare
        if not nan:
            _same(etf.decode_prefix(data, improper_lists=improper), (term, len(data)), "prefix")
            _same(etf.decode(data, views=True, improper_lists=improper), term, "views")
        try:
            again = etf.encode(term)
        except etf.EncodeError:
            continue
        _same(b"".join(etf.encode_parts(term)), again, "encode_parts")
        if not nan:
            _same(etf.decode(again, improper_lists=improper), term, "round trip")


def main() -> None:
    if sys.argv[1:2] == ["seeds"]:
        write_seeds(Path(sys.argv[2]).resolve())
        return
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
