"""The `make fuzz` harnesses (fuzz/) still drive today's API: each one runs a few
inputs to the end, in a process of its own (they instrument imports and set limits)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirage import etf
from tests.conftest import encode, gradient

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris (requirements-dev.txt) is not installed",
)


def harness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_service_harness_runs_every_operation_on_an_upload(tmp_path: Path) -> None:
    files = [ROOT / "samples" / "rocket.jpg", tmp_path / "g.gif", tmp_path / "junk.bin"]
    files[1].write_bytes(encode(gradient((40, 30)), "GIF"))
    files[2].write_bytes(b"GIF89a\x00")
    done = harness("fuzz/fuzz_service.py", "time", *files)
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == list(map(str, files))


def test_the_etf_harness_checks_decoded_terms(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    terms = [(1, etf.Atom("info"), b"\x89PNG", {etf.Atom("width"): 3}), [1, 2.5, -(2**70)]]
    for n, term in enumerate(terms):
        (seeds / f"{n}.etf").write_bytes(etf.encode(term))
    done = harness("fuzz/fuzz_etf.py", "-runs=500", "-seed=1", seeds)
    assert done.returncode == 0, done.stderr
    assert "Done 500 runs" in done.stderr
