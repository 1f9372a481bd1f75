"""Synthetic test material: drawn product photos and labelled catalogs made on the fly."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHARED_IKEA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ikea" / "catalog.csv"
SHAPES = ("circles", "squares", "triangles")
COLOURS = {"circles": (200, 30, 30), "squares": (30, 60, 200), "triangles": (20, 150, 40)}


def draw_item(category: str, seed: int, size: int = 128) -> Image.Image:
    """A product photo stand-in: one coloured shape of the category on white, placed by seed."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    side = int(rng.integers(size // 3, size // 2))
    x, y = (int(v) for v in rng.integers(4, size - side - 4, size=2))
    jitter = rng.integers(-40, 40, size=3)
    colour = tuple(
        int(np.clip(c + j, 0, 255)) for c, j in zip(COLOURS[category], jitter, strict=True)
    )
    box = (x, y, x + side, y + side)
    if category == "circles":
        draw.ellipse(box, fill=colour)
    elif category == "squares":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, y + side), (x + side // 2, y), (x + side, y + side)], fill=colour)
    stripes = int(rng.integers(1, 4))  # a few lines so items of one category differ
    for i in range(stripes):
        offset = int(rng.integers(0, side))
        draw.line((x, y + offset, x + side, y + offset), fill=(255, 255, 255), width=1 + i)
    return image


def write_shapes_catalog(root: Path, per_category: int = 5) -> Path:
    """ROOT/shop/<category>/<category>-<n>.jpg, plus one circle also filed under squares."""
    for c, category in enumerate(SHAPES):
        folder = root / "shop" / category
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_category):
            draw_item(category, seed=100 * c + n).save(folder / f"{category}-{n}.jpg", quality=92)
    shared = (root / "shop" / "circles" / "circles-0.jpg").read_bytes()
    (root / "shop" / "squares" / "also-a-circle.jpg").write_bytes(shared)
    return root


def jpeg_bytes(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


@dataclass(frozen=True)
class CatalogRow:
    """The fields of a catalog entry the evaluation reads, for hand-made labelled sets."""

    id: str
    categories: tuple[str, ...]
    image: Path
    content_hash: str
