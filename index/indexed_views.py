"""Extra indexed vectors of each catalog picture: fixed crops, so a partial photo finds it.

A shopper's photo often shows part of a product, off-centre and tilted; the catalog photo shows
all of it. Besides its whole picture, each product can be indexed by `views` crops of it (the
centre, then the four corners, each `SIDE` of the picture's width and height). Search already
scores a product at its best vector and gives it one slot (`index_store.top_products`), so
the crops only add ways to be found: a product's first vector stays its whole picture
(`CatalogIndex.vector_of`, "similar to this product"), and the "no match" threshold is
calibrated on whole pictures only. A crop counts at search only where it nearly is the photo
(retrieval/crop_gate.py, whose entries the manifest carries).

Crops are deterministic, so their vectors are cached like the pictures' under
`<content hash>:<CROP_VERSION>-<n>`: a rebuild embeds only new pictures' crops, and a change
of the crop geometry (a new CROP_VERSION) re-embeds them all rather than mixing geometries.
"""

import numpy as np

from index.catalog import CatalogEntry

SIDE = 0.8  # crop side, share of the picture's width and height (64 % of its area)
ANCHORS = ((0.5, 0.5), (0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))  # (x, y) of the margin
MAX_VIEWS = len(ANCHORS)
CROP_VERSION = "crop80v1"  # names the geometry above in cache keys


def crop(image: np.ndarray, view: int) -> np.ndarray:
    """(H, W, 3) → (h, w, 3) uint8: crop number `view` (0 = centre, 1-4 = corners)."""
    if not 0 <= view < MAX_VIEWS:
        raise ValueError(f"crop view {view} not in 0..{MAX_VIEWS - 1}")
    height, width = image.shape[:2]
    h, w = max(1, round(height * SIDE)), max(1, round(width * SIDE))
    x, y = ANCHORS[view]
    top, left = round((height - h) * y), round((width - w) * x)
    return np.ascontiguousarray(image[top : top + h, left : left + w])


def view_key(content_hash: str, view: int) -> str:
    """The vector cache key of a picture's crop."""
    return f"{content_hash}:{CROP_VERSION}-{view}"


def with_views(entries: list[CatalogEntry], views: int) -> list[tuple[CatalogEntry, str]]:
    """(entry, cache key) of every vector an index of `entries` holds, in vector order: every
    entry's whole picture first (catalog order), then crop 0 of each, crop 1 of each, ...
    (entries sharing a picture share its crops' cache keys: embedded once)."""
    if not 0 <= views <= MAX_VIEWS:
        raise ValueError(f"indexed views must be 0..{MAX_VIEWS}, not {views}")
    whole = [(e, e.content_hash) for e in entries]
    crops = [(e, view_key(e.content_hash, v)) for v in range(views) for e in entries]
    return whole + crops
