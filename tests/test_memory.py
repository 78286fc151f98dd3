"""mirage.memory: Pillow's block cache, applied only where Mirage owns the process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from PIL import Image as PILImage

from mirage import image, memory
from tests.conftest import REPO_ROOT, encode, gradient


@pytest.fixture(autouse=True)
def restore_pillow() -> Iterator[None]:
    # The cache is process-wide: leave Pillow as every other test expects it.
    before = memory.current()
    yield
    core = PILImage.core
    core.set_blocks_max(before.blocks_max)
    core.set_block_size(before.block_size)
    core.clear_cache()


def test_configure_sets_the_block_cache() -> None:
    applied = memory.configure(environ={})
    assert applied == memory.BlockCache(memory.BLOCK_SIZE, memory.BLOCKS_MAX)
    assert memory.current() == applied


def test_configure_takes_other_sizes() -> None:
    assert memory.configure(256 * 1024, 8, environ={}) == memory.BlockCache(256 * 1024, 8)


@pytest.mark.parametrize("name", memory.ENVIRONMENT)
def test_pillow_environment_variables_win(name: str) -> None:
    before = memory.current()
    assert memory.configure(environ={name: "4"}) == before


def test_importing_the_core_leaves_pillow_alone() -> None:
    # mirage.image runs inside other people's processes: Pillow's defaults stay.
    program = (
        "from PIL import Image; core = Image.core; "
        "before = (core.get_block_size(), core.get_blocks_max()); "
        "import mirage, mirage.ops, mirage.memory; "
        "print(before == (core.get_block_size(), core.get_blocks_max()))"
    )
    env = {k: v for k, v in os.environ.items() if k not in memory.ENVIRONMENT}
    env["PYTHONPATH"] = str(REPO_ROOT)
    run = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "True", run.stderr


def test_thumbnails_reuse_cached_blocks() -> None:
    data = encode(gradient((900, 600)), "PNG")
    core = PILImage.core

    def reused_by_second_call() -> int:
        image.thumbnail(data, 64, 64)  # fills the cache
        core.reset_stats()
        image.thumbnail(data, 64, 64)
        return core.get_stats()["reused_blocks"]

    assert reused_by_second_call() == 0  # Pillow's default: nothing kept
    memory.configure(environ={})
    assert reused_by_second_call() > 0


def test_a_call_that_plans_many_pixels_gives_memory_back(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mirage.image import thumbnail
    from tests.conftest import encode, gradient

    trims: list[int] = []
    monkeypatch.setattr(memory, "_trim", trims.append)
    data = encode(gradient((32, 32)), "PNG")
    with memory.returned_after():
        thumbnail(data, 16, 16)
    assert trims == []  # small calls skip it
    with memory.returned_after():
        thumbnail(data, 2048, 2048, format="bmp")  # 4 MP planned
    assert trims == [0]
    memory.note(10**9)  # outside a call: nothing recorded, nothing trimmed
    assert trims == [0]


def test_the_service_gives_memory_back_after_large_calls_and_releases(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mirage.service import Service
    from tests.conftest import encode, gradient

    trims: list[int] = []
    monkeypatch.setattr(memory, "_trim", trims.append)
    service = Service()
    args = {"max_pixels": 10**7, "allowed_formats": ("png",), "format": "bmp"}
    data = encode(gradient((32, 32)), "PNG")
    small = service.call("thumbnail", data, {**args, "width": 16, "height": 16})
    assert small.kind == "ok" and trims == []
    large = service.call("thumbnail", data, {**args, "width": 2048, "height": 2048})
    assert large.kind == "ok" and large.image is not None and trims == [0]
    service.release(small.image.handle)  # type: ignore[union-attr]
    assert trims == [0]
    service.release(large.image.handle)
    assert trims == [0, 0]


def test_releasing_an_owners_large_images_gives_memory_back(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mirage.service import Service
    from tests.conftest import encode, gradient

    trims: list[int] = []
    monkeypatch.setattr(memory, "_trim", trims.append)
    service = Service()
    args = {"max_pixels": 10**7, "allowed_formats": ("png",), "format": "bmp"}
    data = encode(gradient((32, 32)), "PNG")
    for _ in range(2):  # two small images: together under the threshold
        assert (
            service.call("thumbnail", data, {**args, "width": 64, "height": 64}, owner="a").kind
            == "ok"
        )
    assert service.release_owner("a") == 2 and trims == []
    # Two images of 2 MP each: neither call planned enough to trim, both together do.
    for _ in range(2):
        reply = service.call("thumbnail", data, {**args, "width": 1449, "height": 1449}, owner="b")
        assert reply.kind == "ok"
    assert trims == []
    assert service.release_owner("b") == 2 and trims == [0]
    assert service.live_handles() == 0
