"""mirage/native.py: a fast path's library is loaded once, and a call that arrives
while it loads waits for it instead of being told there is none."""

from __future__ import annotations

import threading

import cffi  # type: ignore[import-untyped]
import pytest

from mirage import jpegdc, native


def test_a_call_during_the_load_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    if not jpegdc._LIBRARY.path.exists():
        pytest.skip("mirage/_jpeg_dc.so not built (no C compiler)")
    library = native.Library(
        jpegdc._LIBRARY.path.name,
        "int mirage_jdc_probe(const uint8_t *, size_t, int *, int *, int *);",
    )
    loading, second_started = threading.Event(), threading.Event()
    opened: list[str] = []
    dlopen = cffi.FFI.dlopen

    def held_open(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(path)
        loading.set()
        second_started.wait(5)
        return dlopen(self, path, *args, **kwargs)

    monkeypatch.setattr(cffi.FFI, "dlopen", held_open)
    results: dict[str, object] = {}

    def first() -> None:
        results["first"] = library.get()

    def second() -> None:
        loading.wait(5)
        second_started.set()
        results["second"] = library.get()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results["first"] is not None
    assert results["second"] is results["first"]
    assert len(opened) == 1


def test_a_library_not_built_is_none() -> None:
    assert native.Library("_not_built_here.so", "int f(void);").get() is None
