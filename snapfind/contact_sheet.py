"""A contact sheet PNG: each query photo beside its results, for a person to judge at a glance."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from retrieval.annotate import draw_boxes
from retrieval.results import FoundObject, Hit, QueryResult

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


# A sheet's row: the query's tile (made at once, so a row holds a thumbnail, not a photo), then
# the hits drawn beside it
Row = tuple[Image.Image, list[Hit]]


def query_row(photo: Path, hits: list[Hit]) -> Row:
    """A photo searched whole: its tile, then its hits."""
    return _tile(photo, f"query\n{photo.name}"), hits


def object_rows(photo: Path, image: np.ndarray, objects: list[FoundObject]) -> list[Row]:
    """One row per object: the photo with that object's box drawn, then its hits."""
    rows = []
    for number, found in enumerate(objects, start=1):
        boxed = Image.fromarray(image).convert("RGB")
        draw_boxes(boxed, [(found.box, found.label)], first=number)
        rows.append((_tile(boxed, f"{number} · {found.label}\n{photo.name}"), found.result.hits))
    return rows


def sheet(rows: list[Row]) -> Image.Image:
    """The rows one under another: each query tile, then one tile per hit with title and score."""
    columns = 1 + max((len(hits) for _, hits in rows), default=0)
    picture = Image.new("RGB", (columns * TILE, max(1, len(rows)) * (TILE + LABEL)), "white")
    for y, (query, hits) in enumerate(rows):
        tiles = [query] + [
            _tile(h.product.image, f"{h.product.title}\n{h.score:.3f}") for h in hits
        ]
        for x, tile in enumerate(tiles):
            picture.paste(tile, (x * TILE, y * (TILE + LABEL)))
    return picture


def contact_sheet(rows: list[tuple[Path, QueryResult]]) -> Image.Image:
    """One row per query: the query tile, then one tile per hit with title and score."""
    return sheet([query_row(photo, result.hits) for photo, result in rows])
