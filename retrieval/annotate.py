"""Numbered boxes drawn on a photo, so a shopper can say which object they meant."""

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from retrieval.objects import DetectedObject

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6")


def draw_objects(
    image: np.ndarray, objects: Sequence[DetectedObject], first: int = 1
) -> Image.Image:
    """A copy of the (H, W, 3) photo with box i labelled "i · label" in its own colour."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(2, min(canvas.size) // 150)
    for number, found in enumerate(objects, start=first):
        colour = COLOURS[(number - 1) % len(COLOURS)]
        box = found.box.as_tuple()
        draw.rectangle(box, outline=colour, width=width)
        caption = f"{number} · {found.label}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), caption)
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=colour)
        draw.text((box[0], box[1]), caption, fill="white")
    return canvas
