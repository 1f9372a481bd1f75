"""Hypothesis strategies for the decoder fuzz: valid images of every allowed format, mutated.

Shared by tests/test_decode_fuzz.py (short, in `make test`) and tools/fuzz_decode.py (long).
The property: `decode_image` returns an (H, W, 3) uint8 array within the limits or raises the
one `ImageError`, in bounded time and memory, whatever the bytes.
"""

import io
import struct
import time
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from retrieval.decode import decode_image
from retrieval.errors import ImageError
from retrieval.limits import ImageLimits

# Tight limits make the memory bound meaningful: a header that lies is caught at 16 MB, not 256.
FUZZ_LIMITS = ImageLimits(
    max_bytes=1 << 20, max_pixels=4_000_000, max_side=4096, max_canvas_bytes=16 << 20
)
MAX_SECONDS = 5.0  # per input; generous (a hang or a quadratic path, not a speed goal)
MAX_PEAK_GROWTH = 4 * FUZZ_LIMITS.max_canvas_bytes + (48 << 20)  # canvas, RGB copy, array, slack


@cache
def seeds() -> tuple[tuple[str, bytes], ...]:
    """Small valid files: each allowed format, in the modes that take distinct decoder paths."""
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    cases = [
        ("JPEG", rgb, {}),
        ("JPEG", rgb, {"progressive": True}),
        ("JPEG", rgb.convert("CMYK"), {}),
        ("PNG", rgb, {}),
        ("PNG", rgb.convert("RGBA"), {}),
        ("PNG", rgb.convert("P"), {"transparency": 0}),
        ("PNG", Image.fromarray(np.arange(768, dtype=np.uint16).reshape(24, 32)), {}),
        ("WEBP", rgb, {"quality": 80}),
        ("WEBP", rgb.convert("RGBA"), {"lossless": True}),
        ("GIF", rgb.convert("P"), {}),
        ("GIF", rgb.convert("P"), {"save_all": True, "append_images": [rgb.convert("P")]}),
        ("TIFF", rgb, {}),
        ("TIFF", rgb, {"compression": "tiff_lzw"}),
        ("TIFF", Image.fromarray(rng.random((24, 32), dtype=np.float32), "F"), {}),
        ("BMP", rgb, {}),
        ("BMP", rgb.convert("P"), {}),
    ]
    out = []
    for fmt, image, options in cases:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        out.append((fmt, buffer.getvalue()))
    return tuple(out)


def with_dimensions(fmt: str, data: bytes, width: int, height: int) -> bytes:
    """`data` with its header's width and height replaced (extreme headers), where we know how."""
    out = bytearray(data)
    if fmt == "PNG":
        struct.pack_into(">II", out, 16, width, height)
        struct.pack_into(">I", out, 29, zlib.crc32(bytes(out[12:29])))  # a valid IHDR CRC
    elif fmt == "BMP":
        struct.pack_into("<ii", out, 18, width, height)
    elif fmt == "GIF":
        struct.pack_into("<HH", out, 6, width & 0xFFFF, height & 0xFFFF)
    elif fmt == "JPEG" and (sof := out.find(b"\xff\xc0")) > 0:
        struct.pack_into(">HH", out, sof + 5, height & 0xFFFF, width & 0xFFFF)
    return bytes(out)


@st.composite
def hostile_images(draw: st.DrawFn) -> bytes:
    """A seed file, maybe with extreme dimensions, then flipped, overwritten, cut or padded."""
    fmt, data = draw(st.sampled_from(seeds()))
    if draw(st.booleans()):
        side = st.one_of(st.integers(0, 3), st.integers(1, 70_000), st.just(2**31 - 1))
        data = with_dimensions(fmt, data, draw(side), draw(side))
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, max(0, len(out) - 1)))
        kind = draw(st.sampled_from(("flip", "overwrite", "truncate", "insert")))
        if kind == "flip" and out:
            out[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=16))
            out[where : where + len(patch)] = patch
        elif kind == "truncate":
            del out[where:]
        else:
            out[where:where] = draw(st.binary(min_size=1, max_size=64))
    return bytes(out)


@dataclass(frozen=True)
class Outcome:
    """What one decode did: an array shape or the error, and its cost."""

    shape: tuple[int, ...] | None
    error: str | None
    seconds: float
    peak_growth: int  # bytes of resident memory above the level before the call


def decode_measured(data: bytes) -> Outcome:
    """Decode under FUZZ_LIMITS; any exception but `ImageError` propagates (a finding)."""
    _reset_peak()
    before = _status_kb("VmRSS")
    started = time.perf_counter()
    shape, error = None, None
    try:
        array = decode_image(data, limits=FUZZ_LIMITS, min_side=64)
        shape = array.shape
        assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
        assert array.shape[0] * array.shape[1] <= FUZZ_LIMITS.max_pixels
    except ImageError as caught:
        error = caught.user_message
    seconds = time.perf_counter() - started
    return Outcome(shape, error, seconds, (_status_kb("VmHWM") - before) * 1024)


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident size (VmHWM) to the current."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")
