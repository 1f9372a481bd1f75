"""RGB array → the square input a backbone expects, the same way for catalog and query."""

import numpy as np
from PIL import Image

PAD_VALUE = 255  # catalogs shoot products on white; padding with white adds no edges


def to_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 so its longest side is `size`, then centre it on white.

    Padding keeps the aspect ratio: a long sofa stays a long sofa instead of being squashed.
    Resizing first means the only canvas allocated is (size, size): padding first would
    allocate max(H, W)², 2.7 TiB for a 1,000,000×1 strip.
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))  # (w, h), w or h = size
    resized = Image.fromarray(image).resize(inner, Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
    canvas.paste(resized, ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)  # (size, size, 3)
