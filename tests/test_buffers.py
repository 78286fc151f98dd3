"""mirage.buffers: reading borrowed input in place, and encoded output (memfd or
BytesIO) read out once into a buffer, a file descriptor or bytes."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage

from mirage import buffers, image
from mirage.buffers import Encoded, ViewFile, keep, read_bytes, reader
from mirage.codec import EncodeOptions, Frames, encode
from mirage.errors import EncodeFailed
from tests.conftest import BLUE, RED, gradient, open_bytes
from tests.conftest import encode as pil_encode

LINUX_FDS = Path("/proc/self/fd")


def frames_of(
    *images: PILImage.Image, durations: tuple[int, ...] = (), loop: int | None = None
) -> Frames:
    return Frames(tuple(images), durations, loop)


def encoded_bytes(frames: Frames, fmt: str, options: EncodeOptions | None = None) -> bytes:
    with encode(frames, fmt, options or EncodeOptions()) as out:
        return out.to_bytes()


# --- Encoded ------------------------------------------------------------------------------------


# A plain colour encodes fast at any size: big enough for the memfd route.
LARGE = PILImage.new("RGB", (520, 520), BLUE)
assert LARGE.width * LARGE.height > buffers.MEMFD_ABOVE
SMALL = gradient((50, 40))
both_routes = pytest.mark.parametrize("im", [SMALL, LARGE], ids=["bytesio", "memfd"])


@both_routes
def test_read_into_fills_the_buffer_exactly(im: PILImage.Image) -> None:
    with encode(frames_of(im), "png", EncodeOptions()) as out:
        size = len(out)
        assert size == out.size > 0
        # Sentinel bytes around the target prove nothing is written outside it.
        backing = bytearray(b"\xaa" * (size + 16))
        view = memoryview(backing)[8 : 8 + size]
        out.read_into(view)
        assert backing[:8] == b"\xaa" * 8 and backing[-8:] == b"\xaa" * 8
        assert bytes(backing[8 : 8 + size]) == out.to_bytes()
        assert bytes(backing[8:16]) == b"\x89PNG\r\n\x1a\n"


@both_routes
def test_to_bytes_can_be_read_twice(im: PILImage.Image) -> None:
    # read_into uses positioned reads, so reading again gives the same bytes.
    with encode(frames_of(im), "jpg", EncodeOptions()) as out:
        assert out.to_bytes() == out.to_bytes()


@both_routes
def test_read_into_a_short_buffer_fails_cleanly(im: PILImage.Image) -> None:
    with encode(frames_of(im), "png", EncodeOptions()) as out:
        with pytest.raises((EncodeFailed, ValueError)):
            out.read_into(memoryview(bytearray(len(out) - 1)))


def test_small_outputs_go_to_bytesio() -> None:
    # Setting up a memfd costs more than a small encode gains from it.
    with encode(frames_of(SMALL), "png", EncodeOptions()) as out:
        assert isinstance(out._file, io.BytesIO)
        assert out.to_bytes() == pil_encode(SMALL, "PNG")


def test_bytesio_fallback_behaves_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where there is no memfd (macOS), a BytesIO stands in for large outputs too.
    expected = encoded_bytes(frames_of(LARGE), "png")
    monkeypatch.delattr(os, "memfd_create", raising=False)
    with encode(frames_of(LARGE), "png", EncodeOptions()) as out:
        assert isinstance(out._file, io.BytesIO)
        assert len(out) == len(expected)
        buffer = bytearray(len(out))
        out.read_into(memoryview(buffer))
        assert bytes(buffer) == expected == out.to_bytes()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux-only")
def test_large_outputs_go_to_a_memfd() -> None:
    with encode(frames_of(LARGE), "png", EncodeOptions()) as out:
        fd = out._file.fileno()
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:mirage-encode")
        assert os.fstat(fd).st_size == len(out)
        assert out.to_bytes() == pil_encode(LARGE, "PNG")
    # Closing the Encoded closes the descriptor.
    with pytest.raises(OSError):
        os.fstat(fd)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux-only")
def test_animation_pixels_count_every_frame() -> None:
    # 8 frames of 200x200 are over the limit though one frame is not.
    frame = PILImage.new("RGB", (200, 200), RED)
    assert frame.width * frame.height * 8 > buffers.MEMFD_ABOVE > frame.width * frame.height
    frames = Frames((frame,) * 8, (40,) * 8, 0)
    with encode(frames, "gif", EncodeOptions()) as out:
        assert os.readlink(f"/proc/self/fd/{out._file.fileno()}").startswith("/memfd:")


@pytest.mark.skipif(not LINUX_FDS.is_dir(), reason="needs /proc/self/fd")
def test_no_descriptor_leaks() -> None:
    frames = frames_of(LARGE)  # large enough to be encoded into a memfd
    before = len(os.listdir(LINUX_FDS))
    for _ in range(50):
        with encode(frames, "png", EncodeOptions()) as out:
            out.to_bytes()
    # Failed encodes close their scratch file too.
    for _ in range(50):
        with pytest.raises(EncodeFailed):
            encode(frames, "jpg", EncodeOptions(extra={"subsampling": "bogus"}))
    # And so do the image-level calls that encode and return bytes.
    data = pil_encode(LARGE, "PNG")
    for _ in range(50):
        image.thumbnail(data, LARGE.width, LARGE.height)
        image.to_bytes(image.from_bytes(data), format="jpg")
    assert len(os.listdir(LINUX_FDS)) == before


def test_encoded_is_a_context_manager() -> None:
    out = encode(frames_of(gradient((8, 8))), "png", EncodeOptions())
    assert isinstance(out, Encoded)
    with out as same:
        assert same is out
    with pytest.raises(ValueError):
        out.to_bytes()  # closed


# --- write_to: the port's way out ----------------------------------------------------------


def _drain(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 1 << 16):
        into.extend(chunk)


@both_routes
def test_write_to_a_pipe_writes_exactly_the_bytes(im: PILImage.Image) -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()
    # A reader thread: outputs larger than the pipe's buffer must not block.
    drain = threading.Thread(target=_drain, args=(read_fd, received))
    drain.start()
    try:
        with encode(frames_of(im), "png", EncodeOptions()) as out:
            out.write_to(write_fd)
            expected = out.to_bytes()
    finally:
        os.close(write_fd)
        drain.join()
        os.close(read_fd)
    assert bytes(received) == expected
    assert open_bytes(bytes(received)).size == im.size


@both_routes
def test_write_to_a_file_after_other_bytes(im: PILImage.Image, tmp_path: Path) -> None:
    # Written at the descriptor's position, after what is already there (a frame header).
    path = tmp_path / "out"
    with open(path, "wb") as fh, encode(frames_of(im), "png", EncodeOptions()) as out:
        fh.write(b"HEAD")
        fh.flush()
        out.write_to(fh.fileno())
        expected = out.to_bytes()
    assert path.read_bytes() == b"HEAD" + expected


# --- Outputs ----------------------------------------------------------------------------


def test_read_bytes_returns_the_bytes_and_closes() -> None:
    out = encode(frames_of(SMALL), "png", EncodeOptions())
    assert read_bytes(out) == pil_encode(SMALL, "PNG")
    with pytest.raises(ValueError):
        out.to_bytes()  # closed


def test_keep_hands_back_the_open_encoded() -> None:
    out = encode(frames_of(SMALL), "png", EncodeOptions())
    with keep(out) as same:
        assert same is out
        assert same.to_bytes() == pil_encode(SMALL, "PNG")


def test_image_outputs_take_an_output() -> None:
    data = pil_encode(gradient((40, 30)), "PNG")
    kept, held = image.thumbnail(data, 20, 15, output=keep)
    with kept:
        assert isinstance(kept, Encoded)
        assert kept.to_bytes() == image.thumbnail(data, 20, 15)[0]
        assert held.byte_size == len(kept)
    with image.to_bytes(held, format="jpg", output=keep) as again:
        assert again.to_bytes() == image.to_bytes(held, format="jpg")
    sizes = image.to_bytes(held, output=len)  # any callable: it owns the Encoded
    assert sizes == len(image.to_bytes(held))


# --- reading in place -----------------------------------------------------------------


def test_reader_shares_bytes_and_reads_views_in_place() -> None:
    data = bytes(range(256)) * 4
    assert isinstance(reader(data), io.BytesIO)
    backing = bytearray(data)
    fp = reader(memoryview(backing))
    assert isinstance(fp, io.BufferedReader)
    backing[0] = 0xFF  # a view: a change to the buffer shows through
    assert fp.read(2) == bytes([0xFF, 1])


def test_view_file_reads_seeks_and_tells() -> None:
    data = bytes(range(100))
    raw = ViewFile(memoryview(data))
    assert raw.readable() and raw.seekable()
    buffer = bytearray(10)
    assert raw.readinto(memoryview(buffer)) == 10 and bytes(buffer) == data[:10]
    assert raw.tell() == 10
    assert raw.seek(-5, io.SEEK_END) == 95
    assert raw.readinto(memoryview(buffer)) == 5 and bytes(buffer[:5]) == data[95:]
    assert raw.readinto(memoryview(buffer)) == 0  # at the end
    assert raw.seek(3, io.SEEK_CUR) == 103 and raw.readinto(memoryview(buffer)) == 0
    assert raw.seek(-500) == 0  # never before the start


def test_view_file_casts_wide_views_to_bytes() -> None:
    words = memoryview(bytearray(b"abcdefgh")).cast("I")
    assert io.BufferedReader(ViewFile(words)).read() == b"abcdefgh"
