"""Bytes → the pixels an extractor is fed: the same call for queries, the index and the study.

A JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers the network's
input side (the extractor shrinks it to that side anyway), so catalog images, shoppers'
photos and the evaluation's queries all reach the network through identical pixels.
"""

import numpy as np

from retrieval.decode import decode_image
from retrieval.limits import DEFAULT_LIMITS, ImageLimits

# Names this decoding in cache keys: change it when the pixels change (v2: large non-JPEG
# images are box-reduced right after decoding, and resized before they are padded).
DECODING = "draft-v2"


def decode_for_model(
    data: bytes, input_size: int, limits: ImageLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """(H, W, 3) uint8 RGB for an extractor of square side `input_size`; raises `ImageError`."""
    return decode_image(data, limits=limits, min_side=input_size)
