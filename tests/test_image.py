"""mirage.image: the Image value (immutable, shared across threads), borrowed buffers,
errors, and the memory a held image costs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image as PILImage

from mirage.errors import MirageError
from mirage.image import (
    Image,
    flip,
    footprint,
    from_bytes,
    info,
    resize,
    thumbnail,
    to_bytes,
)
from tests.conftest import GREEN, encode, gradient, open_bytes, quadrants
from tests.imaging import animation, encoded, rgb_at

# --- the Image value, shared across threads ---------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_one_image_resized_from_many_threads(fmt: str) -> None:
    image = from_bytes(encoded(gradient((320, 240)), fmt))
    expected = resize(image, 123, 77)[0]
    barrier = threading.Barrier(16)

    def work(_: int) -> bytes:
        barrier.wait()  # start together, so the resizes really overlap
        return resize(image, 123, 77)[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(16)))
    assert all(result == expected for result in results)


def test_resized_image_shared_across_threads() -> None:
    # An Image returned by resize holds decoded pixels; they too are shared read-only.
    _, image = resize(from_bytes(encoded(gradient((200, 150)), "png")), 100, 75)
    expected = resize(image, 41, 29)[0]
    barrier = threading.Barrier(16)

    def work(_: int) -> bytes:
        barrier.wait()
        return resize(image, 41, 29)[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(work, range(16))) == {expected}


def test_image_is_immutable() -> None:
    image = from_bytes(encoded(gradient((20, 10)), "png"))
    with pytest.raises(AttributeError):
        image.width = 5  # type: ignore[misc]
    assert isinstance(image, Image)


def test_errors_are_mirage_errors_with_known_reasons() -> None:
    # Whatever the path, a failure is a MirageError the transports can name.
    for data in (b"", b"\x89PNG\r\n\x1a\n", encoded(gradient((10, 10)), "jpg")[:300]):
        with pytest.raises(MirageError) as info:
            resize(from_bytes(data), 5, 5)
        assert info.value.reason in {"unsupported_image_format", "truncated_image", "decode_failed"}


def test_shared_images_from_eight_threads() -> None:
    # One lazily decoded JPEG (each thread drafts and decodes on its own) and one held,
    # decoded image (pixels shared read-only) must give the same bytes in every thread.
    lazy = from_bytes(encoded(gradient((800, 600)), "jpg"))
    _, held = thumbnail(encoded(gradient((400, 300)), "png"), 400, 300)
    expected = (thumbnail(lazy, 100, 90)[0], thumbnail(held, 77, 51, fit="contain")[0])
    barrier = threading.Barrier(8)

    def work(_: int) -> tuple[bytes, bytes]:
        barrier.wait()  # start together so the work overlaps
        results = []
        for _ in range(3):
            results.append((thumbnail(lazy, 100, 90)[0], thumbnail(held, 77, 51, fit="contain")[0]))
        assert len(set(results)) == 1
        return results[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(work, range(8))) == {expected}


# --- borrowed buffers --------------------------------------------------------------------------


def test_results_do_not_borrow_the_callers_buffer() -> None:
    # The NIF lends an Erlang binary as a memoryview for one call only. Whatever
    # outlives the call (a held Image, a thumbnail's Image) must not point into it.
    data = encoded(quadrants((80, 60)), "png")
    backing = bytearray(data)
    view = memoryview(backing)
    image = from_bytes(view)
    described = info(view)
    out, thumb = thumbnail(view, 40, 30)
    view.release()
    backing[:] = bytes(len(backing))  # the lender reuses its memory
    assert (described.width, described.height) == (80, 60)
    assert to_bytes(image) == to_bytes(from_bytes(data))
    assert to_bytes(thumb) == to_bytes(from_bytes(out))
    assert rgb_at(open_bytes(to_bytes(thumb)), (30, 5)) == GREEN


@pytest.mark.parametrize("fmt", ["jpg", "gif", "webp"])
def test_memoryview_sources_give_the_same_thumbnails(fmt: str) -> None:
    data = animation(fmt) if fmt != "jpg" else encoded(gradient((300, 200)), fmt)
    assert thumbnail(memoryview(data), 20, 20)[0] == thumbnail(data, 20, 20)[0]


# --- the memory a held image costs -------------------------------------------------------------


def test_footprint_of_a_header_only_image_is_its_bytes() -> None:
    data = encoded(gradient((40, 30)), "png")
    assert footprint(from_bytes(data)) == len(data)


@pytest.mark.parametrize(
    ("mode", "held_mode", "per_pixel"),
    [
        ("L", "L", 1),
        ("1", "L", 1),  # widened for resampling, like P and I;16
        ("P", "RGB", 4),
        ("I;16", "I", 4),
        ("RGB", "RGB", 4),  # Pillow stores RGB in four bytes a pixel
        ("RGBA", "RGBA", 4),
    ],
)
def test_footprint_of_decoded_pixels_follows_pillows_storage(
    mode: str, held_mode: str, per_pixel: int
) -> None:
    held = from_bytes(encode(PILImage.new(mode, (40, 30)), "PNG"))
    flipped = flip(held, "horizontal")  # decoded and held
    assert flipped._pixels is not None and flipped._pixels.first.mode == held_mode
    assert footprint(flipped) == 40 * 30 * per_pixel


def test_footprint_counts_every_frame() -> None:
    held = from_bytes(animation("gif"))
    flipped = flip(held, "vertical")
    assert flipped.frames == 3
    assert footprint(flipped) == 3 * 30 * 20 * 4  # GIF frames come back as RGB
