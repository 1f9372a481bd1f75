"""A contact sheet PNG: each query photo beside its results, for a person to judge at a glance."""

import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from retrieval.annotate import draw_boxes
from retrieval.bounded_read import read_image_file
from retrieval.decode import decode_image
from retrieval.errors import ConfigError, ImageError
from retrieval.limits import DEFAULT_LIMITS, ImageLimits
from retrieval.results import FoundObject, Hit, QueryResult

TILE = 160
LABEL = 34
# The sheet is an image too: held to the pixels snapfind accepts in one, so many photos at a
# large k are refused before any search rather than drawn into gigabytes.
MAX_TILES = DEFAULT_LIMITS.max_pixels // (TILE * (TILE + LABEL))


def one_line(text: str) -> str:
    """`text` with control characters and line breaks as spaces: a catalog title holding a
    newline or a terminal escape would otherwise break the one-hit-per-line layout."""
    return "".join(" " if unicodedata.category(c) in {"Cc", "Zl", "Zp"} else c for c in text)


def check_sheet(path: Path, rows: int, columns: int) -> None:
    """Refuse a `--sheet` that can never be a PNG file, or too large to draw, before the model
    loads; a missing folder is left to the write, after the results (as for every output)."""
    if path.is_dir():
        raise ConfigError(
            f"--sheet {path} is a folder: name a PNG file in it, e.g. {path}/sheet.png"
        )
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--sheet {path} does not end in .png: name a PNG file, e.g. sheet.png")
    if rows * columns > MAX_TILES:
        raise ConfigError(
            f"a contact sheet of {rows} rows of {columns} tiles is too large to draw (at most "
            f"{MAX_TILES} tiles): search fewer photos at once, or lower -k"
        )


def _thumbnail(path: Path | None, limits: ImageLimits) -> Image.Image | None:
    """`path`'s picture through the same bounded read and decode as a query, or None: a
    catalog picture may have been replaced by a huge or broken file since the index was built."""
    if path is None:
        return None
    try:
        return Image.fromarray(
            decode_image(read_image_file(path, limits.max_bytes), limits=limits, min_side=TILE)
        )
    except ImageError:
        return None


def _tile(picture: Image.Image | None, caption: str) -> Image.Image:
    tile = Image.new("RGB", (TILE, TILE + LABEL), "white")
    if picture is None:
        ImageDraw.Draw(tile).text((8, TILE // 2), "(no image)", fill="grey")
    else:
        thumb = ImageOps.contain(picture.convert("RGB"), (TILE, TILE))
        tile.paste(thumb, ((TILE - thumb.width) // 2, (TILE - thumb.height) // 2))
    draw = ImageDraw.Draw(tile)
    for line, text in enumerate(caption.splitlines()[:2]):
        draw.text((4, TILE + 2 + 15 * line), text[:26], fill="black")
    return tile


# A sheet's row: the query's tile (made at once, so a row holds a thumbnail, not a photo), then
# the hits drawn beside it
Row = tuple[Image.Image, list[Hit]]


def query_row(photo: Path, hits: list[Hit], limits: ImageLimits = DEFAULT_LIMITS) -> Row:
    """A photo searched whole: its tile, then its hits."""
    return _tile(_thumbnail(photo, limits), f"query\n{photo.name}"), hits


def object_rows(photo: Path, image: np.ndarray, objects: list[FoundObject]) -> list[Row]:
    """One row per object: the photo with that object's box drawn, then its hits."""
    rows = []
    for number, found in enumerate(objects, start=1):
        boxed = Image.fromarray(image).convert("RGB")
        draw_boxes(boxed, [(found.box, found.label)], first=number)
        rows.append((_tile(boxed, f"{number} · {found.label}\n{photo.name}"), found.result.hits))
    return rows


def sheet(rows: list[Row], limits: ImageLimits = DEFAULT_LIMITS) -> Image.Image:
    """The rows one under another: each query tile, then one tile per hit with title and score."""
    columns = 1 + max((len(hits) for _, hits in rows), default=0)
    picture = Image.new("RGB", (columns * TILE, max(1, len(rows)) * (TILE + LABEL)), "white")
    for y, (query, hits) in enumerate(rows):
        tiles = [query] + [
            _tile(
                _thumbnail(h.product.image, limits), f"{one_line(h.product.title)}\n{h.score:.3f}"
            )
            for h in hits
        ]
        for x, tile in enumerate(tiles):
            picture.paste(tile, (x * TILE, y * (TILE + LABEL)))
    return picture


def contact_sheet(
    rows: list[tuple[Path, QueryResult]], limits: ImageLimits = DEFAULT_LIMITS
) -> Image.Image:
    """One row per query: the query tile, then one tile per hit with title and score."""
    return sheet([query_row(photo, result.hits, limits) for photo, result in rows], limits)
