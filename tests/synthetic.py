"""Synthetic test material: drawn product photos and labelled catalogs made on the fly."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from retrieval.regions import Box

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


# The smallest real extractor on the command line: B0 with random weights at 64 px.
TINY_ARGS = ["--backbone", "efficientnetb0", "--weights", "none", "--input-size", "64"]


def tiny_build_command(root: Path) -> list[str]:
    """`snapfind index build` argv over a catalog of 2 pictures per shape written under `root`
    (into `root/idx`), with TINY_ARGS."""
    catalog = write_shapes_catalog(root / "catalog", per_category=2)
    return ["index", "build", "--catalog", str(catalog), "--out", str(root / "idx"), *TINY_ARGS]


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


FURNITURE_SIDE = 240  # side of a furniture product photo; pasted at this size into a 720×540 room


def draw_furniture(kind: str) -> Image.Image:
    """A catalog-like photo: one distinct, textured object on white."""
    rng = np.random.default_rng(len(kind))
    image = Image.new("RGB", (FURNITURE_SIDE, FURNITURE_SIDE), "white")
    draw = ImageDraw.Draw(image)
    if kind == "sofa":  # red body with darker cushions
        draw.rectangle((20, 80, 220, 190), fill=(180, 30, 40))
        for x in (30, 95, 160):
            draw.rectangle((x, 90, x + 55, 140), fill=(120, 10, 20))
    elif kind == "lamp":  # yellow shade on a black stem
        draw.polygon([(80, 30), (160, 30), (190, 110), (50, 110)], fill=(240, 200, 40))
        draw.rectangle((114, 110, 126, 210), fill=(20, 20, 20))
        draw.rectangle((80, 205, 160, 220), fill=(20, 20, 20))
    elif kind == "rug":  # blue and white checkerboard
        for i in range(8):
            for j in range(8):
                colour = (30, 60, 170) if (i + j) % 2 else (200, 210, 240)
                draw.rectangle((24 + 24 * i, 24 + 24 * j, 48 + 24 * i, 48 + 24 * j), fill=colour)
    else:  # plant: a green, speckled bush in a brown pot
        speckle = rng.integers(0, 60, size=(FURNITURE_SIDE, FURNITURE_SIDE, 1))
        leaves = speckle + np.array([[[20, 120, 30]]])
        mask = Image.new("L", (FURNITURE_SIDE, FURNITURE_SIDE))
        ImageDraw.Draw(mask).ellipse((40, 20, 200, 160), fill=255)
        image.paste(Image.fromarray(leaves.astype(np.uint8)), (0, 0), mask)
        draw.rectangle((85, 150, 155, 220), fill=(120, 70, 30))
    return image


FURNITURE = ("sofa", "lamp", "rug", "plant")


def compose_room(kinds: tuple[str, ...]) -> tuple[np.ndarray, dict[str, Box]]:
    """A plain wall-and-floor room with the products pasted side by side (white cut out)."""
    rng = np.random.default_rng(7)
    room = np.zeros((540, 720, 3), np.float32)
    room[:330] = (205, 195, 175)  # wall
    room[330:] = (150, 110, 80)  # wooden floor
    room += rng.normal(0, 6, room.shape)
    canvas = Image.fromarray(np.clip(room, 0, 255).astype(np.uint8))
    boxes = {}
    spots = [(20, 150), (250, 40), (480, 270), (260, 290)]
    for kind, (x, y) in zip(kinds, spots, strict=False):
        product = draw_furniture(kind)
        opaque = (np.asarray(product).min(axis=2) < 235).astype(np.uint8) * 255
        canvas.paste(product, (x, y), Image.fromarray(opaque))
        boxes[kind] = Box(x, y, x + FURNITURE_SIDE, y + FURNITURE_SIDE)
    return np.asarray(canvas), boxes
