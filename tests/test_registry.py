"""mirage.registry: handles for objects held on behalf of the BEAM, with owners and caps."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mirage.errors import Overloaded
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


# --- owners ------------------------------------------------------------------------------


def test_release_owner_drops_only_that_owners_handles() -> None:
    registry: Registry[str] = Registry()
    a1, a2 = registry.add("a1", owner="a"), registry.add("a2", owner="a")
    b1 = registry.add("b1", owner="b")
    free = registry.add("no owner")
    assert registry.owners() == 2
    assert registry.release_owner("a") == 2
    for gone in (a1, a2):
        with pytest.raises(KeyError):
            registry.get(gone)
    assert registry.get(b1) == "b1" and registry.get(free) == "no owner"
    assert registry.owners() == 1
    assert registry.release_owner("a") == 0  # idempotent
    assert registry.release_owner("never seen") == 0
    assert len(registry) == 2


def test_release_owner_none_drops_nothing() -> None:
    # Objects without an owner (the NIF's) are never dropped as a group.
    registry: Registry[str] = Registry()
    registry.add("x")
    registry.add("y", owner=None)
    assert registry.release_owner(None) == 0  # type: ignore[arg-type]
    assert len(registry) == 2


def test_releasing_one_handle_updates_its_owner() -> None:
    registry: Registry[str] = Registry()
    first = registry.add("first", owner="p")
    second = registry.add("second", owner="p")
    registry.release(first)
    assert registry.release_owner("p") == 1
    with pytest.raises(KeyError):
        registry.get(second)
    registry.release(second)  # already gone with its owner
    assert len(registry) == 0 and registry.owners() == 0


# --- caps --------------------------------------------------------------------------------


def test_handle_cap_refuses_and_holds_nothing() -> None:
    registry: Registry[int] = Registry(max_handles=2)
    h1 = registry.add(1, owner="p")
    registry.add(2)
    with pytest.raises(Overloaded) as raised:
        registry.add(3, owner="p")
    assert raised.value.reason == "overloaded"
    assert len(registry) == 2
    registry.release(h1)  # room again
    h3 = registry.add(3)
    assert registry.get(h3) == 3 and len(registry) == 2


def test_byte_cap_counts_sizes() -> None:
    registry: Registry[str] = Registry(max_bytes=100)
    big = registry.add("big", size=60, owner="p")
    assert registry.held_bytes == 60
    with pytest.raises(Overloaded):
        registry.add("too much", size=41)
    assert registry.held_bytes == 60 and len(registry) == 1
    registry.add("fits", size=40)
    assert registry.held_bytes == 100
    registry.release(big)
    assert registry.held_bytes == 40
    registry.release(big)  # idempotent: not subtracted twice
    assert registry.held_bytes == 40
    registry.add("owned", size=50, owner="q")
    assert registry.release_owner("q") == 1
    assert registry.held_bytes == 40


def test_one_object_larger_than_the_byte_cap_is_refused() -> None:
    registry: Registry[str] = Registry(max_bytes=10)
    with pytest.raises(Overloaded):
        registry.add("huge", size=11)
    assert len(registry) == 0 and registry.held_bytes == 0


def test_no_caps_by_default() -> None:
    registry: Registry[int] = Registry()
    for i in range(1000):
        registry.add(i, size=1 << 40)
    assert len(registry) == 1000


def test_concurrent_adds_never_pass_the_cap() -> None:
    registry: Registry[int] = Registry(max_handles=50, max_bytes=50 * 10)
    threads = 8
    barrier = threading.Barrier(threads)

    def work(t: int) -> int:
        barrier.wait()
        added = 0
        for i in range(100):
            try:
                registry.add(i, owner=t, size=10)
                added += 1
            except Overloaded:
                pass
        return added

    with ThreadPoolExecutor(max_workers=threads) as pool:
        added = sum(pool.map(work, range(threads)))
    assert added == len(registry) == 50
    assert registry.held_bytes == 500
    assert sum(registry.release_owner(t) for t in range(threads)) == 50
    assert len(registry) == 0 and registry.held_bytes == 0


def test_full_reports_a_reached_cap() -> None:
    assert not Registry[int]().full()
    by_count: Registry[int] = Registry(max_handles=1)
    handle = by_count.add(1)
    assert by_count.full()
    by_count.release(handle)
    assert not by_count.full()
    by_bytes: Registry[int] = Registry(max_bytes=10)
    by_bytes.add(1, size=9)
    assert not by_bytes.full()
    by_bytes.add(2, size=1)
    assert by_bytes.full()
