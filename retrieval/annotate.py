"""Numbered boxes drawn on a photo, so a shopper can say which object they meant.

Needs Pillow only (no model, no index), so the bot draws its reply without loading either.
"""

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:  # importing objects.py loads FAISS
    from retrieval.objects import DetectedObject

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6")
REPLY_SIDE = 960  # longer side of the annotated photo a reply carries: sharp on a phone
REPLY_BYTES = 400 * 1024  # and at most this many bytes of JPEG (Telegram takes 10 MB)
QUALITIES = (85, 70, 55, 40)  # JPEG qualities tried, best first, until the photo fits

Corners = tuple[int, int, int, int]  # left, top, right, bottom in pixels


def draw_boxes(canvas: Image.Image, boxes: Sequence[tuple[Corners, str]], first: int = 1) -> None:
    """Draw box i, labelled "i · label", in its own colour on `canvas` (in place)."""
    draw = ImageDraw.Draw(canvas)
    width = max(2, min(canvas.size) // 150)
    font = ImageFont.load_default(size=max(11, min(canvas.size) // 28))
    for number, (box, label) in enumerate(boxes, start=first):
        colour = COLOURS[(number - 1) % len(COLOURS)]
        draw.rectangle(box, outline=colour, width=width)
        caption = f"{number} · {label}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), caption, font=font)
        draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), fill=colour)
        draw.text((box[0], box[1]), caption, fill="white", font=font)


def draw_objects(
    image: np.ndarray, objects: Sequence["DetectedObject"], first: int = 1
) -> Image.Image:
    """A copy of the (H, W, 3) photo with the finder's objects boxed and numbered."""
    canvas = Image.fromarray(image).convert("RGB")
    draw_boxes(canvas, [(o.box.as_tuple(), o.name) for o in objects], first)
    return canvas


def annotated_jpeg(
    image: np.ndarray,
    boxes: Sequence[tuple[Corners, str]],
    side: int = REPLY_SIDE,
    max_bytes: int = REPLY_BYTES,
) -> bytes:
    """The (H, W, 3) photo scaled to `side` on its longer side, boxes numbered from 1, as a
    JPEG of at most `max_bytes` (lower quality first, then a smaller picture if need be)."""
    height, width = image.shape[:2]
    while True:
        scale = side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = Image.fromarray(image).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        draw_boxes(canvas, [(_scaled(box, scale), label) for box, label in boxes])
        for quality in QUALITIES:
            out = io.BytesIO()
            canvas.save(out, "JPEG", quality=quality)
            if out.tell() <= max_bytes or side <= 64:
                return out.getvalue()
        side //= 2


def _scaled(box: Corners, scale: float) -> Corners:
    left, top, right, bottom = box
    return (round(left * scale), round(top * scale), round(right * scale), round(bottom * scale))
