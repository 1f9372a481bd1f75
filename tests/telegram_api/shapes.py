"""A synthetic furniture catalog of drawn shapes: one shape per category, several colours.

Small PNGs that are all different, so even a randomly initialised network finds each
catalog image again as its own nearest neighbour.
"""

import csv
import io
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 96
CATEGORIES = ("sofa", "lamp", "chair", "table", "bed", "rug")
COLOURS = {
    "red": (210, 40, 40),
    "green": (40, 170, 70),
    "blue": (40, 70, 210),
    "black": (25, 25, 25),
}


def draw(category: str, colour: str, size: int = SIZE) -> Image.Image:
    """The picture of one product: the category's shape in `colour` on a tinted ground."""
    ink = COLOURS[colour]
    ground = tuple(255 - (c // 6) for c in ink)
    image = Image.new("RGB", (size, size), ground)
    pen = ImageDraw.Draw(image)
    s = size
    if category == "sofa":
        pen.rectangle([s * 0.15, s * 0.35, s * 0.85, s * 0.75], fill=ink)
        pen.rectangle([s * 0.1, s * 0.25, s * 0.25, s * 0.75], fill=ink)
    elif category == "lamp":
        pen.ellipse([s * 0.25, s * 0.1, s * 0.75, s * 0.5], fill=ink)
        pen.rectangle([s * 0.45, s * 0.5, s * 0.55, s * 0.9], fill=ink)
    elif category == "chair":
        pen.polygon([(s * 0.5, s * 0.1), (s * 0.9, s * 0.9), (s * 0.1, s * 0.9)], fill=ink)
    elif category == "table":
        pen.rectangle([s * 0.1, s * 0.3, s * 0.9, s * 0.4], fill=ink)
        pen.rectangle([s * 0.15, s * 0.4, s * 0.25, s * 0.9], fill=ink)
        pen.rectangle([s * 0.75, s * 0.4, s * 0.85, s * 0.9], fill=ink)
    elif category == "bed":
        pen.ellipse([s * 0.1, s * 0.1, s * 0.9, s * 0.9], outline=ink, width=int(s * 0.12))
    else:  # rug
        for row in range(0, s, s // 6):
            pen.rectangle([0, row, s, row + s // 12], fill=ink)
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def product_id(category: str, colour: str) -> str:
    return f"{category}-{colour}"


def title(category: str, colour: str, edition: str = "") -> str:
    return f"{edition}{colour.title()} {category}"


def write_catalog(root: Path, edition: str = "") -> Path:
    """Write images and a catalog.csv (id, title, categories, image, url, price) under `root`."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, category in enumerate(CATEGORIES):
        for shade, colour in enumerate(COLOURS):
            pid = product_id(category, colour)
            path = images / f"{pid}.png"
            path.write_bytes(png(draw(category, colour)))
            rows.append(
                {
                    "id": pid,
                    "title": title(category, colour, edition),
                    "categories": category,
                    "image": f"images/{pid}.png",
                    "url": f"https://shop.example/p/{pid}",
                    "price": f"{100 + 10 * number + shade} EUR",
                }
            )
    catalog = root / "catalog.csv"
    with catalog.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return catalog
