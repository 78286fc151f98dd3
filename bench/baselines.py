"""Baselines for bench/run.exs: what a user would otherwise pick, timed in-process.

bench/run.exs starts this program once and interleaves its requests with NIF runs,
so every ratio compares numbers measured in the same run. One request per line on
stdin, one answer per line on stdout:

    run IMPL PATH WIDTH HEIGHT QUALITY   -> microseconds for one thumbnail
    size IMPL PATH WIDTH HEIGHT QUALITY  -> bytes of that thumbnail's output
    loop IMPL PATH COUNT                 -> mean microseconds of a trivial call
    threads IMPL PATH WIDTH HEIGHT N SECONDS -> thumbnails per second with N threads
    have IMPL                            -> yes | no (is the baseline installed?)

IMPL is one of: pillow_fast (header, draft, reduce, resample, encode: what Mirage
did before issue 12's tuning), pillow_naive (full decode, then fit), vips (pyvips
thumbnail_buffer: what Vix/Image users get; for an animation it writes one frame),
vips_frames (pyvips keeping every frame of an animation), convert (ImageMagick as a
whole process), mirage_py (Mirage's Python core without the NIF). Every thumbnail
fills WIDTH x HEIGHT, centre-cropped.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirage import image as mirage_image

CONVERT = "/usr/bin/convert"  # /usr/local/bin may hold a stand-in on these machines
PILLOW_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}

try:
    import pyvips
except (ImportError, OSError):
    pyvips = None


def _ext(path: str) -> str:
    return Path(path).suffix.lstrip(".").lower().replace("jpeg", "jpg")


def _save(frames: list[Image.Image], source: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    params: dict[str, object] = {}
    if fmt in ("jpg", "webp"):
        params["quality"] = quality
    if len(frames) > 1:
        params.update(save_all=True, append_images=frames[1:], duration=source.info.get("duration"))
    first = frames[0]
    if fmt == "jpg" and first.mode != "RGB":
        first = first.convert("RGB")
    first.save(out, PILLOW_FORMAT[fmt], **params)
    return out.getvalue()


def pillow_fast(data: bytes, fmt: str, w: int, h: int, quality: int) -> bytes:
    im = Image.open(io.BytesIO(data))
    sw, sh = im.size
    scale = max(w / sw, h / sh)
    cw, ch = w / scale, h / scale
    box = ((sw - cw) / 2, (sh - ch) / 2, (sw + cw) / 2, (sh + ch) / 2)
    if im.format == "JPEG":
        drafted = im.draft(im.mode, (math.ceil(sw * scale * 2), math.ceil(sh * scale * 2)))
        if drafted:
            k = drafted[1][2] / sw
            box = tuple(v * k for v in box)
    frames = []
    for frame in ImageSequence.Iterator(im):
        if frame.mode == "P":
            frame = frame.convert("RGBA")
        frames.append(frame.resize((w, h), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0))
    return _save(frames, im, fmt, quality)


def pillow_naive(data: bytes, fmt: str, w: int, h: int, quality: int) -> bytes:
    im = Image.open(io.BytesIO(data))
    frames = []
    for frame in ImageSequence.Iterator(im):
        frame.load()
        if frame.mode == "P":
            frame = frame.convert("RGBA")
        frames.append(ImageOps.fit(frame, (w, h), Image.Resampling.BILINEAR))
    return _save(frames, im, fmt, quality)


def vips(data: bytes, fmt: str, w: int, h: int, quality: int) -> bytes:
    options = "n=-1" if fmt in ("gif", "webp") else ""
    thumb = pyvips.Image.thumbnail_buffer(data, w, height=h, crop="centre", option_string=options)
    suffix = f".{fmt}[Q={quality}]" if fmt in ("jpg", "webp") else f".{fmt}"
    return thumb.write_to_buffer(suffix)


def vips_frames(data: bytes, fmt: str, w: int, h: int, quality: int) -> bytes:
    """pyvips keeping every frame of an animation: ``thumbnail_buffer`` with ``crop``
    treats an animation as one tall image and returns a single frame, so each page
    is scaled to cover the box, cropped, and the pages joined again."""
    head = pyvips.Image.new_from_buffer(data, "", n=-1)
    page = head.get("page-height") if head.get_typeof("page-height") else head.height
    scale = max(w / head.width, h / page)
    pages = head.height // page
    cover_w, cover_h = math.ceil(head.width * scale), math.ceil(page * scale)
    thumb = pyvips.Image.thumbnail_buffer(
        data, cover_w, height=cover_h * pages, option_string="n=-1"
    )
    page = thumb.get("page-height") if thumb.get_typeof("page-height") else thumb.height
    left, top = (thumb.width - w) // 2, (page - h) // 2
    frames = [thumb.crop(left, i * page + top, w, h) for i in range(thumb.height // page)]
    out = pyvips.Image.arrayjoin(frames, across=1) if len(frames) > 1 else frames[0]
    out = out.copy()
    out.set_type(pyvips.GValue.gint_type, "page-height", h)
    suffix = f".{fmt}[Q={quality}]" if fmt in ("jpg", "webp") else f".{fmt}"
    return out.write_to_buffer(suffix)


def convert(path: str, fmt: str, w: int, h: int, quality: int) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=f".{fmt}", dir="/dev/shm") as out:
        cmd = [CONVERT, path]
        if fmt == "gif":
            cmd.append("-coalesce")
        cmd += ["-thumbnail", f"{w}x{h}^", "-gravity", "center", "-extent", f"{w}x{h}"]
        cmd += ["-quality", str(quality), out.name]
        subprocess.run(cmd, check=True)
        return Path(out.name).read_bytes()


def mirage_py(data: bytes, fmt: str, w: int, h: int, quality: int) -> bytes:
    return mirage_image.thumbnail(data, w, h, quality=quality)[0]


IMPLS: dict[str, Callable[..., bytes]] = {
    "pillow_fast": pillow_fast,
    "pillow_naive": pillow_naive,
    "vips": vips,
    "vips_frames": vips_frames,
    "convert": convert,
    "mirage_py": mirage_py,
}


def have(impl: str) -> bool:
    if impl in ("vips", "vips_frames"):
        return pyvips is not None
    if impl == "convert":
        return os.access(CONVERT, os.X_OK)
    return impl in IMPLS


def output_size(impl: str, path: str, w: int, h: int, quality: int) -> int:
    fmt = _ext(path)
    if impl == "convert":
        return len(convert(path, fmt, w, h, quality))
    return len(IMPLS[impl](Path(path).read_bytes(), fmt, w, h, quality))


def run_once(impl: str, path: str, w: int, h: int, quality: int) -> float:
    fmt = _ext(path)
    if impl == "convert":
        start = time.perf_counter()
        convert(path, fmt, w, h, quality)
        return (time.perf_counter() - start) * 1e6
    data = Path(path).read_bytes()
    start = time.perf_counter()
    IMPLS[impl](data, fmt, w, h, quality)
    return (time.perf_counter() - start) * 1e6


def loop(impl: str, path: str, count: int) -> float:
    data = Path(path).read_bytes()
    if impl == "mirage_py":
        call: Callable[[], object] = lambda: mirage_image.info(data)  # noqa: E731
    else:

        def call() -> object:
            im = Image.open(io.BytesIO(data))
            return (im.format, im.size, im.mode)

    call()
    # Median over batches of 100, as bench/run.exs does for the NIF.
    batches = []
    for _ in range(count // 100):
        start = time.perf_counter()
        for _ in range(100):
            call()
        batches.append((time.perf_counter() - start) * 1e6 / 100)
    return statistics.median(batches)


def threads(impl: str, path: str, w: int, h: int, n: int, seconds: float) -> float:
    data = Path(path).read_bytes()
    fmt = _ext(path)
    done = [0] * n
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            IMPLS[impl](data, fmt, w, h, 85)
            done[i] += 1

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def main() -> None:
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "run":
                impl, path, w, h, q = args
                answer = f"{run_once(impl, path, int(w), int(h), int(q)):.1f}"
            elif cmd == "size":
                impl, path, w, h, q = args
                answer = str(output_size(impl, path, int(w), int(h), int(q)))
            elif cmd == "loop":
                impl, path, count = args
                answer = f"{loop(impl, path, int(count)):.3f}"
            elif cmd == "threads":
                impl, path, w, h, n, seconds = args
                answer = f"{threads(impl, path, int(w), int(h), int(n), float(seconds)):.2f}"
            elif cmd == "have":
                answer = "yes" if have(args[0]) else "no"
            else:
                answer = f"error unknown command {cmd}"
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which stops
            answer = f"error {type(exc).__name__}: {exc}".replace("\n", " ")
        print(answer, flush=True)


if __name__ == "__main__":
    main()
