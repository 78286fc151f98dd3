"""mirage.registry: handles for objects held on behalf of the BEAM."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mirage.registry import Registry


def test_handles_are_positive_and_increasing() -> None:
    registry: Registry[str] = Registry()
    handles = [registry.add(f"object {i}") for i in range(10)]
    assert all(h > 0 for h in handles)
    assert handles == sorted(handles)
    assert len(set(handles)) == len(handles)


def test_get_returns_the_object_added() -> None:
    registry: Registry[object] = Registry()
    first, second = object(), object()
    h1, h2 = registry.add(first), registry.add(second)
    assert registry.get(h1) is first
    assert registry.get(h2) is second


def test_same_object_twice_gets_two_handles() -> None:
    # Each holder releases its own handle without dropping the other's.
    registry: Registry[str] = Registry()
    h1, h2 = registry.add("same"), registry.add("same")
    assert h1 != h2
    registry.release(h1)
    assert registry.get(h2) == "same"


@pytest.mark.parametrize("handle", [0, -1, 1, 999])
def test_unknown_handle_is_a_key_error(handle: int) -> None:
    registry: Registry[str] = Registry()
    with pytest.raises(KeyError):
        registry.get(handle)


def test_released_handle_is_gone_and_never_reused() -> None:
    registry: Registry[str] = Registry()
    old = registry.add("old")
    registry.release(old)
    with pytest.raises(KeyError):
        registry.get(old)
    # A stale handle must never reach someone else's object.
    new = [registry.add(f"new {i}") for i in range(5)]
    assert old not in new
    assert min(new) > old
    with pytest.raises(KeyError):
        registry.get(old)


def test_release_is_idempotent() -> None:
    registry: Registry[str] = Registry()
    keep, drop = registry.add("keep"), registry.add("drop")
    registry.release(drop)
    registry.release(drop)
    registry.release(12345)  # never issued
    assert len(registry) == 1
    assert registry.get(keep) == "keep"


def test_len_counts_held_objects() -> None:
    registry: Registry[int] = Registry()
    assert len(registry) == 0
    handles = [registry.add(i) for i in range(3)]
    assert len(registry) == 3
    registry.release(handles[1])
    assert len(registry) == 2


def test_registries_are_independent() -> None:
    a: Registry[str] = Registry()
    b: Registry[str] = Registry()
    handle = a.add("in a")
    with pytest.raises(KeyError):
        b.get(handle)


def test_concurrent_adds_get_distinct_handles() -> None:
    registry: Registry[tuple[int, int]] = Registry()
    threads, per_thread = 16, 500
    barrier = threading.Barrier(threads)

    def work(t: int) -> list[int]:
        barrier.wait()  # maximise overlap
        return [registry.add((t, i)) for i in range(per_thread)]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(work, range(threads)))
    handles = [h for hs in results for h in hs]
    assert len(set(handles)) == threads * per_thread
    assert set(handles) == set(range(1, threads * per_thread + 1))
    assert len(registry) == threads * per_thread
    for t, hs in enumerate(results):
        assert [registry.get(h) for h in hs] == [(t, i) for i in range(per_thread)]


def test_concurrent_add_and_release() -> None:
    registry: Registry[int] = Registry()
    threads = 8
    barrier = threading.Barrier(threads)

    def work(t: int) -> int:
        barrier.wait()
        kept = 0
        for i in range(400):
            handle = registry.add(i)
            if i % 2:
                registry.release(handle)
            else:
                kept += 1
        return kept

    with ThreadPoolExecutor(max_workers=threads) as pool:
        kept = sum(pool.map(work, range(threads)))
    assert len(registry) == kept == threads * 200
