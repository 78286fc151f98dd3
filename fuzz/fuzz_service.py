"""Coverage-guided fuzzing of the Python core: ``Service.call`` on mutated image files.

    python fuzz/fuzz_service.py seeds DIR [IMAGES_DIR]  # link small corpus files
    python fuzz/fuzz_service.py time FILE...            # one input's cost, uninstrumented
    python fuzz/fuzz_service.py [libFuzzer flags] CORPUS_DIR [SEED_DIR...]

(``make fuzz`` runs it with a time budget and ../shared/corpus as seeds.) Each input
is an upload: ``info``, ``from_bytes`` and ``thumbnail`` on the bytes, then every
operation that takes a held image on the one ``from_bytes`` produced. The input's
last byte picks the output format and fit, so mutations reach every encoder.

A finding is any of: an exception out of ``Service.call`` (it must never raise), a
reason outside :data:`mirage.errors.REASONS`, ``internal_error`` (a bug: the logged
traceback is shown), or a reply of the wrong shape.

Cost findings are not crashes: an input slower than ``FUZZ_SLOW_SECONDS`` (default
5) twice in a row, or one that raised the process's peak memory by more than
``FUZZ_GROWTH_MB`` (default 256), is written to ``FUZZ_SLOW_DIR`` and the run goes
on. Instrumented, Pillow's Python parsers run many times slower: ``time`` tells
whether such an input is slow for real. The address space is capped at
``FUZZ_MEMORY_MB`` (default 1536) so that an allocation too large for the budget
fails (``too_many_pixels``) instead of stopping the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import atheris

# Coverage is only needed while fuzzing; `seeds` and `time` run plain code.
_PLAIN = sys.argv[1:2] in (["seeds"], ["time"])
with contextlib.nullcontext() if _PLAIN else atheris.instrument_imports():
    import PIL  # noqa: F401 - instrumented for coverage of Pillow's Python parsers
    from PIL import Image as _PILImage  # noqa: F401

    from mirage import buffers
    from mirage.errors import REASONS
    from mirage.etf import Atom
    from mirage.formats import FORMATS
    from mirage.service import Reply, Service

# Small enough that one input stays cheap, large enough for real decodes.
MAX_PIXELS = 1_000_000
ALL = [Atom(f) for f in FORMATS]
FITS = ("contain", "cover", "fill")
SLOW = float(os.environ.get("FUZZ_SLOW_SECONDS", "5"))
SLOW_DIR = Path(os.environ.get("FUZZ_SLOW_DIR", "_build/fuzz/slow"))
GROWTH_KB = int(os.environ.get("FUZZ_GROWTH_MB", "256")) * 1024
MEMORY = int(os.environ.get("FUZZ_MEMORY_MB", "1536")) * 1024 * 1024
# Seeds are mutated whole: large files would make every execution slow.
SEED_BYTES = 64 * 1024
# Bugs only: data reasons are the expected answers to garbage.
BUG = "internal_error"


class Bug(AssertionError):
    pass


class _Errors(logging.Handler):
    """Keeps the last error logged (the traceback of an internal_error)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = self.format(record)


_errors = _Errors()
logging.getLogger("mirage").addHandler(_errors)
logging.getLogger("mirage").propagate = False
warnings.simplefilter("ignore")
_service = Service()


def args(**extra: Any) -> dict[str, Any]:
    return {"max_pixels": MAX_PIXELS, "allowed_formats": ALL, **extra}


def check(op: str, reply: Reply) -> Reply:
    if not isinstance(reply, Reply):
        raise Bug(f"{op}: answered {reply!r}, not a Reply")
    if reply.kind == "error":
        if reply.reason == BUG:
            raise Bug(f"{op}: internal_error\n{_errors.last}")
        if reply.reason not in REASONS:
            raise Bug(f"{op}: reason {reply.reason!r} is not in the closed set")
    elif reply.kind == "ok":
        if reply.data is not None:
            buffers.read_bytes(reply.data)  # the output must be readable
    else:
        raise Bug(f"{op}: {reply.kind} for a handle this input holds")
    return reply


def call(op: str, source: bytes | int, **extra: Any) -> Reply:
    try:
        reply = _service.call(op, source, args(**extra))
    except Exception as exc:
        raise Bug(f"{op} raised {type(exc).__name__}: {exc}") from exc
    return check(op, reply)


def run(data: bytes) -> None:
    pick = data[-1] if data else 0
    fmt = Atom(FORMATS[pick % len(FORMATS)])
    fit = Atom(FITS[(pick // len(FORMATS)) % len(FITS)])
    held: list[int] = []
    try:
        call("info", data)
        thumb = call("thumbnail", data, width=24, height=16, fit=fit, format=fmt)
        if thumb.image is not None:
            held.append(thumb.image.handle)
        image = call("from_bytes", data).image
        if image is None:
            return
        held.append(image.handle)
        h = image.handle
        steps: list[tuple[str, dict[str, Any]]] = [
            ("resize", {"width": 16, "height": 12, "fit": fit}),
            ("crop", {"x": 1, "y": 1, "width": 7, "height": 5}),
            ("rotate", {"degrees": 30 + pick, "background": [1, 2, 3, 4]}),
            ("flip", {"direction": Atom("horizontal")}),
            ("auto_orient", {}),
        ]
        for op, extra in steps:
            made = call(op, h, **extra).image
            if made is not None:
                held.append(made.handle)
        call("to_bytes", h, format=fmt, quality=1 + pick % 100)
    finally:
        for handle in held:
            _service.release(handle)


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _costly(data: bytes, what: str) -> None:
    SLOW_DIR.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    (SLOW_DIR / f"service-{name}.bin").write_bytes(data)
    print(f"fuzz_service: costly input {name}: {what}", file=sys.stderr, flush=True)


def one_input(data: bytes) -> None:
    peak = _peak_kb()
    started = time.monotonic()
    run(data)
    spent = time.monotonic() - started
    if spent > SLOW:
        # Timed again, alone: the machine may have been busy the first time.
        started = time.monotonic()
        run(data)
        again = time.monotonic() - started
        if again > SLOW:
            _costly(data, f"{spent:.1f} s, then {again:.1f} s")
    if _peak_kb() - peak > GROWTH_KB:
        _costly(data, f"peak memory +{(_peak_kb() - peak) // 1024} MB")


def write_seeds(directory: Path, images: Path) -> None:
    """Link every file of ``images`` up to SEED_BYTES, flat, named by content."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted(images.rglob("*")):
        if path.is_file() and path.suffix not in (".tsv", ".txt", ".md"):
            if "LICENSES" not in path.parts and path.stat().st_size <= SEED_BYTES:
                name = hashlib.sha1(path.read_bytes()).hexdigest()[:16] + path.suffix
                link = directory / name
                if not link.exists():
                    link.symlink_to(path.resolve())


def time_inputs(paths: list[str]) -> None:
    for path in paths:
        data = Path(path).read_bytes()
        peak = _peak_kb()
        started = time.monotonic()
        run(data)
        spent = time.monotonic() - started
        grown = (_peak_kb() - peak) // 1024
        print(f"{path}: {spent:.3f} s, peak memory +{grown} MB")


def main() -> None:
    if sys.argv[1:2] == ["time"]:
        time_inputs(sys.argv[2:])
        return
    if sys.argv[1:2] == ["seeds"]:
        images = Path(sys.argv[3] if len(sys.argv) > 3 else "../shared/corpus")
        write_seeds(Path(sys.argv[2]), images)
        return
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
