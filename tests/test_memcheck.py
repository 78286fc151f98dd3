"""tools/memcheck.py: which AddressSanitizer reports fail `make memcheck` (ours) and
which are only listed (foreign)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "memcheck.py"

# Shortened real reports: an overflow written by our C, then one read by memmove
# called from libffi (ctypes), with our NIF further down the stack.
OURS = """\
==7403==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x61c00014ffac
WRITE of size 1 at 0x61c00014ffac thread T7
    #0 0x7fea1c0bc911 in mirage_output_alloc /work/x/c_src/image_nif.c:40
    #1 0x7fea1c0bb2e0 in _cffi_f_mirage_output_alloc /tmp/b/mirage_nif_cffi.c:1442
    #2 0x7fea1bba6cc0 in cfunction_call Objects/methodobject.c:553

0x61c00014ffac is located 9 bytes to the right of 1827-byte region
allocated by thread T7 here:
    #0 0x7fea644b89cf in __interceptor_malloc asan_malloc_linux.cpp:69
    #1 0x5646f6b2f08b in erts_sys_alloc (/usr/lib/erlang/erts-13.1.5/bin/beam.smp+0x26508b)
"""
FOREIGN = """\
==13787==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x621000018ca0
READ of size 4100 at 0x621000018ca0 thread T0
    #0 0x7f438fa47cf8 in __interceptor_memmove sanitizer_common_interceptors.inc:810
    #1 0x7f438eb67f79  (/lib/x86_64-linux-gnu/libffi.so.8+0x6f79)
    #2 0x7f438eb67b0c in ffi_call (/lib/x86_64-linux-gnu/libffi.so.8+0x6b0c)
    #3 0x7fea1c0bcdd2 in nif_call (/work/x/priv/mirage_nif.so+0x3dd2)

0x621000018ca0 is located 0 bytes to the right of 4000-byte region
allocated by thread T0 here:
    #0 0x7fea644b89cf in __interceptor_malloc asan_malloc_linux.cpp:69
    #1 0x7fea1c0bcdd2 in mirage_output_alloc /work/x/c_src/image_nif.c:36
"""


@pytest.fixture(scope="module")
def memcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memcheck", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["memcheck"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_access_site_is_the_first_frame_outside_the_sanitizer(memcheck: ModuleType) -> None:
    assert memcheck.access_site(OURS) == "mirage_output_alloc /work/x/c_src/image_nif.c:40"
    assert memcheck.access_site(FOREIGN) == "/lib/x86_64-linux-gnu/libffi.so.8"


def test_reports_are_ours_only_when_our_code_made_the_access(
    memcheck: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "asan.100").write_text("noise before\n" + OURS + FOREIGN)
    (tmp_path / "asan.200").write_text(FOREIGN)
    found = memcheck.reports(tmp_path)
    assert [(r.kind, r.ours) for r in found] == [
        ("heap-buffer-overflow", True),
        ("heap-buffer-overflow", False),
        ("heap-buffer-overflow", False),
    ]


@pytest.mark.parametrize(
    ("site", "ours"),
    [
        ("nif_call (/srv/app/priv/mirage_nif.so+0x3dd2)", True),
        ("_cffi_f_mirage_py_call /tmp/mirage-build-x/mirage_nif_cffi.c:12", True),
        ("release_thread /src/mirage/c_src/release.c:30", True),
        ("ImagingUnpack (/venv/PIL/_imaging.cpython-311-x86_64-linux-gnu.so+0x1)", False),
        ("erts_sys_alloc (/usr/lib/erlang/erts-13.1.5/bin/beam.smp+0x26508b)", False),
    ],
)
def test_ours_means_mirage_nif_so(memcheck: ModuleType, site: str, ours: bool) -> None:
    assert memcheck.is_ours(site) is ours


def test_undefined_behaviour_lines_name_their_place(memcheck: ModuleType) -> None:
    line = "/w/c_src/image_nif.c:140:26: runtime error: shift exponent 40 is too large"
    match = memcheck.UNDEFINED.match(line)
    assert match and match[1] == "/w/c_src/image_nif.c:140:26"
    assert memcheck.UNDEFINED.match("a test named runtime error: no") is None
