"""Quick per-case comparison: mirage.image.thumbnail against pyvips, interleaved.

    .venv/bin/python bench/cases.py [ROUNDS] [CASE-SUBSTRING...]

For every bench image: each round runs Mirage's Python core and pyvips
``thumbnail_buffer`` once each, in a new order, and the report gives the median of
the per-round ratio vips/Mirage (above 1: Mirage faster) with both output sizes.
A quick loop for tuning; ``make bench`` is the full suite.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import mirage_py, vips

IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "bench-images"
CASES = [
    ("12 MP JPEG", "photo_12mp.jpg", "jpg"),
    ("2 MP JPEG", "photo_2mp.jpg", "jpg"),
    ("1000x1000 RGBA PNG", "photo_rgba_1000.png", "png"),
    ("2000x1500 WebP", "photo_2000x1500.webp", "webp"),
    ("480x320 GIF, 30 frames", "anim_480x320_30f.gif", "gif"),
]


def timed(fn, data: bytes, fmt: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(data, fmt, 256, 256, 85)
    return (time.perf_counter() - start) * 1e3, len(out)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    wanted = sys.argv[2:]
    for name, file, fmt in CASES:
        if wanted and not any(w.lower() in name.lower() for w in wanted):
            continue
        data = (IMAGES / file).read_bytes()
        runners = {"mirage": mirage_py, "vips": vips}
        sizes = {k: timed(fn, data, fmt)[1] for k, fn in runners.items()}
        samples: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(rounds):
            order = list(runners.items())
            random.shuffle(order)
            for key, fn in order:
                samples[key].append(timed(fn, data, fmt)[0])
        ratios = [v / m for v, m in zip(samples["vips"], samples["mirage"], strict=True)]
        print(
            f"{name:24} mirage {statistics.median(samples['mirage']):7.1f} ms "
            f"vips {statistics.median(samples['vips']):7.1f} ms  "
            f"vips/mirage {statistics.median(ratios):.2f}  "
            f"bytes mirage {sizes['mirage']} vips {sizes['vips']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
