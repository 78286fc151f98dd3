"""mirage/jpegdc.py: the picture Pillow's 1/8-scale draft gives, whatever the thread
count, or no answer at all (Pillow then decodes, with its errors and reasons)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageChops

from mirage import image, jpegdc
from tests.conftest import BENCH, CORPUS, encode, gradient, requires_corpus

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not jpegdc.available(),
    reason="mirage/_jpeg_dc.so not built (no C compiler; c_src/build.py helper jpeg)",
)


def photo(size: tuple[int, int]) -> PILImage.Image:
    """Colour and detail at every scale, so chroma carries AC terms too."""
    noise = PILImage.merge(
        "RGB", [PILImage.effect_noise(size, 60 + 20 * i) for i in range(3)]
    ).convert("RGB")
    return PILImage.blend(
        gradient((max(1, size[0] // 12), max(1, size[1] // 12))).resize(size), noise, 0.35
    )


def jpeg(size: tuple[int, int] = (640, 424), mode: str = "RGB", **options: object) -> bytes:
    im = photo(size)
    return encode(im if mode == "RGB" else im.convert(mode), "JPEG", quality=90, **options)


def pillow_eighth(data: bytes) -> PILImage.Image:
    im = PILImage.open(io.BytesIO(data))
    im.draft(im.mode, (im.width // 8, im.height // 8))
    im.load()
    return im


def ours(data: bytes, threads: int | None = None) -> PILImage.Image | None:
    im = PILImage.open(io.BytesIO(data))
    return jpegdc.decode(data, im.mode, im.size, threads)


def largest_difference(a: PILImage.Image, b: PILImage.Image) -> int:
    extrema = ImageChops.difference(a, b).getextrema()
    if a.mode == "L":
        return int(extrema[1])  # type: ignore[index]
    return max(high for _, high in extrema)  # type: ignore[union-attr]


def test_built_wherever_a_compiler_is() -> None:
    # `make setup` and the Mix compiler build it; a silent fallback to Pillow would
    # pass every other test here (they skip) while losing the speed.
    assert shutil.which("cc") is None or jpegdc.available()


# --- the same picture as Pillow's draft -------------------------------------------------------


@pytest.mark.parametrize(
    ("subsampling", "mode"),
    [(0, "RGB"), (1, "RGB"), (None, "L")],
    ids=["4:4:4", "4:2:2", "grey"],
)
def test_one_pixel_a_block_is_exactly_pillows(subsampling: int | None, mode: str) -> None:
    # Luma, 4:4:4 and 4:2:2 chroma are each block's DC at 1/8, and libjpeg repeats
    # 4:2:2 chroma at this scale rather than interpolating: the very same bytes.
    options = {} if subsampling is None else {"subsampling": subsampling}
    data = jpeg(mode=mode, **options)
    got = ours(data)
    assert got is not None
    want = pillow_eighth(data)
    assert (got.mode, got.size) == (want.mode, want.size) == (mode, (80, 53))
    assert got.tobytes() == want.tobytes()


def test_half_resolution_chroma_is_pillows_within_rounding() -> None:
    # 4:2:0 chroma gives 2x2 pixels a block (libjpeg's reduced inverse DCT, here the
    # mean of each quarter of the block), rounded in another order: off by at most 2.
    data = jpeg(subsampling=2)
    got, want = ours(data), pillow_eighth(data)
    assert got is not None and got.size == want.size
    assert largest_difference(got, want) <= 2
    # and not merely the DC repeated: that is far further off on this picture
    flat = ours(jpeg(subsampling=1))
    assert flat is not None
    assert largest_difference(flat, pillow_eighth(data)) > 2


@requires_corpus
def test_corpus_jpegs_are_pillows_or_declined() -> None:
    checked = 0
    files = sorted(CORPUS.glob("**/*.jp*g")) + sorted(BENCH.glob("*.jpg"))
    for path in files:
        data = path.read_bytes()
        try:
            im = PILImage.open(io.BytesIO(data))
        except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError):
            continue  # not an image Pillow opens
        if im.format != "JPEG" or min(im.size) < 8 or im.width * im.height > 50_000_000:
            continue  # not a JPEG, too small for 1/8, or a bomb Pillow refuses
        got = jpegdc.decode(data, im.mode, im.size)
        if got is None:
            continue
        want = pillow_eighth(data)
        assert (got.mode, got.size) == (want.mode, want.size), path
        assert largest_difference(got, want) <= 2, path
        checked += 1
    assert checked >= 20


# --- threads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"subsampling": 2},
        {"subsampling": 1},
        {"subsampling": 0},
        {"subsampling": 2, "restart_marker_blocks": 7},
        {"subsampling": 2, "restart_marker_rows": 1},
        {"subsampling": 0, "restart_marker_rows": 3},
    ],
    ids=str,
)
@pytest.mark.parametrize("size", [(640, 424), (1001, 77), (65, 1203)], ids=str)
def test_thread_count_never_changes_the_pixels(
    options: dict[str, int], size: tuple[int, int]
) -> None:
    # Without restart markers, threads after the first start at a guessed byte and
    # count only once the first thread meets them in step; with markers, each
    # takes whole intervals. Either way: the bytes of a single thread.
    data = jpeg(size, **options)
    single = ours(data, threads=1)
    assert single is not None
    for threads in (2, 3, 4, 8):
        got = ours(data, threads=threads)
        assert got is not None and got.tobytes() == single.tobytes(), threads
    assert largest_difference(single, pillow_eighth(data)) <= 2


def test_a_thread_that_never_falls_in_step_is_not_used() -> None:
    # A grey image whose blocks are all the same codes: a thread that starts at a
    # byte boundary in the middle is in step at once or never, and the answer is the
    # same either way.
    data = encode(PILImage.new("L", (2048, 2048), 77), "JPEG", quality=90)
    single = ours(data, threads=1)
    assert single is not None and single.getextrema() == (77, 77)
    for threads in (2, 3, 8):
        got = ours(data, threads=threads)
        assert got is not None and got.tobytes() == single.tobytes()


# --- what it leaves to Pillow ------------------------------------------------------------------


def scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


@pytest.mark.parametrize(
    "case",
    [
        "progressive",
        "cmyk",
        "cut_in_scan",
        "no_end_marker",
        "bad_code",
        "wrong_restart_number",
        "not_jpeg",
        "twelve_bit",
        "arithmetic",
    ],
)
def test_declines_what_it_does_not_decode_exactly(case: str) -> None:
    data = jpeg()
    if case == "progressive":
        data = jpeg(progressive=True)
    elif case == "cmyk":
        data = encode(photo((320, 240)).convert("CMYK"), "JPEG", quality=90)
    elif case == "cut_in_scan":
        start = scan_start(data)
        data = data[: start + (len(data) - start) // 2]
    elif case == "no_end_marker":
        data = data[:-2]
    elif case == "bad_code":
        # All ones where a Huffman code starts: no table has that code.
        start = scan_start(data)
        data = data[:start] + b"\xff\x00" * 8 + data[start + 8 :]
    elif case == "wrong_restart_number":
        data = jpeg(restart_marker_rows=1)
        at = data.index(b"\xff\xd3", scan_start(data))
        data = data[:at] + b"\xff\xd5" + data[at + 2 :]
    elif case == "not_jpeg":
        data = encode(photo((320, 240)), "PNG")
    elif case in ("twelve_bit", "arithmetic"):
        name = {"twelve_bit": "monkey12.jpg", "arithmetic": "testimgari.jpg"}[case]
        found = sorted(CORPUS.glob(f"**/*{name}"))
        if not found:
            pytest.skip(f"{name} not in ../shared/corpus")
        data = found[0].read_bytes()
    try:
        im = PILImage.open(io.BytesIO(data))
        mode, size = im.mode, im.size
    except (OSError, SyntaxError, ValueError):
        mode, size = "RGB", (640, 424)  # Pillow cannot open it either
    assert jpegdc.decode(data, mode, size) is None


def test_an_error_keeps_pillows_reason() -> None:
    # Cut in the middle of the scan: declined here, so the answer is Pillow's.
    data = jpeg((2400, 1600))
    start = scan_start(data)
    with pytest.raises(Exception) as raised:
        image.thumbnail(data[: start + (len(data) - start) // 2], 100, 100)
    assert getattr(raised.value, "reason", None) == "truncated_image"


# --- in the thumbnail --------------------------------------------------------------------------


def test_thumbnail_takes_this_path_at_one_eighth(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int] | None] = []
    original = jpegdc.decode

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = original(*args, **kwargs)
        calls.append(None if result is None else result.size)
        return result

    monkeypatch.setattr(jpegdc, "decode", spy)
    data = jpeg((2400, 1600))
    image.thumbnail(data, 100, 100)  # 1/8 (300x200) covers it
    image.thumbnail(data, 400, 400)  # needs 1/2: Pillow's draft
    assert calls == [(300, 200)]


# --- memory safety -----------------------------------------------------------------------------


def test_mutated_files_under_sanitizers(tmp_path: Path) -> None:
    # fuzz/jpegdc_fuzz.c with ASan and UBSan: mutated JPEGs (mostly in the scan, where
    # the threads guess) must give no sanitizer report, and 1-4 threads the same
    # answer and pixels. `make fuzz` runs it longer.
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    driver = tmp_path / "jpegdc_fuzz"
    build = subprocess.run(
        [
            "cc",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-pthread",
            str(ROOT / "fuzz" / "jpegdc_fuzz.c"),
            "-lm",
            "-o",
            str(driver),
        ],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip(f"no sanitizer runtime: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    seeds = []
    for i, options in enumerate(
        [
            {"subsampling": 2},
            {"subsampling": 1},
            {"subsampling": 0},
            {"subsampling": 2, "restart_marker_blocks": 5},
            {"subsampling": 2, "restart_marker_rows": 1},
        ]
    ):
        seed = tmp_path / f"seed{i}.jpg"
        seed.write_bytes(jpeg((150, 100), **options))
        seeds.append(str(seed))
    grey = tmp_path / "grey.jpg"
    grey.write_bytes(jpeg((150, 100), mode="L"))
    seeds.append(str(grey))
    run = subprocess.run(
        [str(driver), "4000", *seeds], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "4000 iterations" in run.stdout


# --- the threads option ------------------------------------------------------------------------


def test_threads_option_limits_the_decoder_and_never_changes_the_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mirage import fastpath

    monkeypatch.setattr(jpegdc, "_threads", lambda size: 4)  # as if on a 4-core machine
    allowed: list[int] = []
    original = fastpath.threads_allowed

    def spy(wanted: int) -> int:
        allowed.append(original(wanted))
        return allowed[-1]

    monkeypatch.setattr(fastpath, "threads_allowed", spy)
    data = jpeg((2400, 1600))
    auto, _ = image.thumbnail(data, 100, 100)
    assert allowed == [4]
    one, _ = image.thumbnail(data, 100, 100, threads=1)
    two, _ = image.thumbnail(data, 100, 100, threads=2)
    assert allowed == [4, 1, 2]
    assert auto == one == two
    with pytest.raises(ValueError, match="threads"):
        image.thumbnail(data, 100, 100, threads=0)
