"""The bounds on what an image may cost, stated once: Settings, decode, build and CLI read these.

Each bound is checked before the memory it guards is allocated: file size before reading,
header dimensions before decoding, decoded canvas before `load()`. Together they cap the worst
image of any kind near the cost of an ordinary large phone photo.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageLimits:
    """What one image may cost, from the file on disk to the decoded canvas."""

    max_bytes: int = 20 * 1024 * 1024  # bytes read from a file or upload (Telegram's bot limit)
    max_pixels: int = 50_000_000  # width × height in the header (decompression bombs)
    max_side: int = 16_384  # longest side in pixels
    max_aspect: float = 20.0  # longest / shortest side; Telegram refuses photos past 20:1 too
    max_canvas_bytes: int = 256 * 1024 * 1024  # the decoder's buffer after JPEG draft scaling


DEFAULT_LIMITS = ImageLimits()

# A shopper's photo with a shorter side than this shows nothing to search: a 1×1 or 8×8 picture
# would still get an album at a confident-looking similarity. Catalog pictures are not held to
# it (an icon-sized product picture still indexes), so it is no `ImageLimits` field.
MIN_QUERY_SIDE = 32

# One row of a catalog manifest (a JSONL line), in characters: Python's `csv` default field
# limit, so both manifest kinds refuse a runaway row before it is held whole in memory.
MAX_MANIFEST_LINE = 131_072
