"""RGB array → the square input a backbone expects, the same way for catalog and query."""

import numpy as np
from PIL import Image

PAD_VALUE = 255  # catalogs shoot products on white; padding with white adds no edges


def to_square(image: np.ndarray, size: int) -> np.ndarray:
    """Pad (H, W, 3) uint8 to a centred square with white, then resize to (size, size, 3).

    Padding keeps the aspect ratio: a long sofa stays a long sofa instead of being squashed.
    """
    height, width = image.shape[:2]
    side = max(height, width)
    canvas = np.full((side, side, 3), PAD_VALUE, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = image
    resized = Image.fromarray(canvas).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)  # (size, size, 3)
