"""A contact sheet PNG: each query photo beside its results, for a person to judge at a glance."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from retrieval.annotate import draw_boxes
from retrieval.results import FoundObject, QueryResult

TILE = 160
LABEL = 34


def _tile(path: Path | Image.Image | None, caption: str) -> Image.Image:
    tile = Image.new("RGB", (TILE, TILE + LABEL), "white")
    try:
        with path if isinstance(path, Image.Image) else Image.open(path) as photo:  # type: ignore[arg-type]
            thumb = ImageOps.contain(photo.convert("RGB"), (TILE, TILE))
        tile.paste(thumb, ((TILE - thumb.width) // 2, (TILE - thumb.height) // 2))
    except (OSError, AttributeError, ValueError):
        ImageDraw.Draw(tile).text((8, TILE // 2), "(no image)", fill="grey")
    draw = ImageDraw.Draw(tile)
    for line, text in enumerate(caption.splitlines()[:2]):
        draw.text((4, TILE + 2 + 15 * line), text[:26], fill="black")
    return tile


def contact_sheet(rows: list[tuple[Path, QueryResult]]) -> Image.Image:
    """One row per query: the query tile, then one tile per hit with title and score."""
    columns = 1 + max(len(result.hits) for _, result in rows)
    sheet = Image.new("RGB", (columns * TILE, len(rows) * (TILE + LABEL)), "white")
    for y, (photo, result) in enumerate(rows):
        tiles = [_tile(photo, f"query\n{photo.name}")]
        tiles += [_tile(h.product.image, f"{h.product.title}\n{h.score:.3f}") for h in result.hits]
        for x, tile in enumerate(tiles):
            sheet.paste(tile, (x * TILE, y * (TILE + LABEL)))
    return sheet


def objects_sheet(rows: list[tuple[Path, np.ndarray, list[FoundObject]]]) -> Image.Image:
    """One row per object: the photo with that object's box drawn, then its hits."""
    lines = [
        (photo, image, number, found)
        for photo, image, objects in rows
        for number, found in enumerate(objects, start=1)
    ]
    columns = 1 + max((len(found.result.hits) for *_, found in lines), default=0)
    sheet = Image.new("RGB", (columns * TILE, max(1, len(lines)) * (TILE + LABEL)), "white")
    for y, (photo, image, number, found) in enumerate(lines):
        boxed = Image.fromarray(image).convert("RGB")
        draw_boxes(boxed, [(found.box, found.label)], first=number)
        tiles = [_tile(boxed, f"{number} · {found.label}\n{photo.name}")]
        hits = found.result.hits
        tiles += [_tile(h.product.image, f"{h.product.title}\n{h.score:.3f}") for h in hits]
        for x, tile in enumerate(tiles):
            sheet.paste(tile, (x * TILE, y * (TILE + LABEL)))
    return sheet
