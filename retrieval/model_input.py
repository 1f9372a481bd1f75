"""Bytes → the pixels an extractor is fed: the same call for queries, the index and the study.

A JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers the network's
input side (the extractor shrinks it to that side anyway), so catalog images, shoppers'
photos and the evaluation's queries all reach the network through identical pixels.
"""

import numpy as np

from retrieval.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_image

DECODING = "draft-v1"  # names this decoding in cache keys: change it when the pixels change


def decode_for_model(
    data: bytes,
    input_size: int,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB for an extractor of square side `input_size`; raises `ImageError`."""
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, min_side=input_size)
