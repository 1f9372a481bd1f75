"""Build step for the object finder: how much each catalog picture resembles *any* piece of a room.

A box cut from a room photo is, to a CNN, "indoor scene" first and "sofa" second, so a few
busy catalog pictures (a shelf full of things, a bunk bed with a desk under it) come up for
every room: hubs. CSLS (Conneau et al., 2018) corrects this with each catalog vector's hubness,
its mean cosine to its K nearest *reference regions*; a match then scores 2·cos − hubness.

The reference must look like what queries look like — pieces of rooms — yet come from the
shop's own catalog (no room photos ship with a catalog). So the build composes pseudo-rooms:
a few catalog photos, their white cut away, pasted on a wall and a floor; boxes of those are the
reference, and a product's own pasted photo never counts for it. rooms_bench (docs/objects.md):
this reference beats boxes of plain catalog photos and no reference at all.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from index.catalog import CatalogEntry
from retrieval.bounded_read import read_image_file
from retrieval.decode import decode_image
from retrieval.embedder import Embedder
from retrieval.limits import ImageLimits
from retrieval.manifest import region_hubness_file
from retrieval.regions import RegionEncoder, region_encoder_for

log = logging.getLogger(__name__)

PIECES = (3, 7)  # catalog photos pasted per pseudo-room: at least, at most (exclusive)
REGIONS_PER_ROOM = 100  # boxes sampled from each pseudo-room
HUBNESS_K = 20  # nearest reference regions averaged per catalog vector
ROOM_SIZE = (640, 480)  # (width, height) of a pseudo-room
CUTOUT = 235  # a pixel with every channel at or above this is the catalog's white backdrop
PICTURE_SIDE = 256  # catalog photos are decoded at least this large, then pasted smaller
BLOCK = 2048  # catalog vectors scored against the reference at a time


@dataclass(frozen=True)
class Draw:
    """Which pseudo-rooms are composed. The reference is random and the rooms' figures move
    with it (first object's hit@5 0.15–0.27 over seven draws, docs/objects.md), so
    rooms_bench averages over several; a build uses the default."""

    seed: int = 12
    rooms: int = 150  # ≈ 10 s of region passes with Lite0; 600 did not steady the figures


def compose_room(pictures: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: the pictures' non-white pixels pasted over a plain wall and floor."""
    width, height = ROOM_SIZE
    wall, floor = (tuple(int(v) for v in rng.integers(low, 240, 3)) for low in (120, 60))
    room = Image.new("RGB", ROOM_SIZE, wall)
    horizon = int(height * rng.uniform(0.5, 0.75))
    room.paste(floor, (0, horizon, width, height))
    for picture in pictures:
        side = int(width * rng.uniform(0.2, 0.5))
        piece = Image.fromarray(picture).resize((side, side))
        mask = Image.fromarray(((np.asarray(piece).min(axis=2) < CUTOUT) * 255).astype(np.uint8))
        left = int(rng.uniform(-0.1, 0.9) * width)
        top = int(min(height - 0.6 * side, horizon - side * rng.uniform(0.3, 0.9)))
        room.paste(piece, (left, top), mask)
    return np.asarray(room)


def region_hubness(
    encoder: RegionEncoder,
    catalog: np.ndarray,
    owners: np.ndarray,
    picture: Callable[[int], np.ndarray],
    draw: Draw = Draw(),
) -> np.ndarray:
    """(V,) float32 hubness of each catalog vector against boxes of pseudo-rooms.

    `catalog`: (V, D) the index's vectors; `owners`: (V,) their products; `picture(v)`: the
    decoded image of vector `v`.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(draw.seed)
    regions, pasted = [], []  # (n, D) per room; the products pasted into it
    for _ in range(min(draw.rooms, max(1, len(catalog) // 2))):
        chosen = rng.choice(len(catalog), min(len(catalog), rng.integers(*PIECES)), replace=False)
        found = encoder.regions(compose_room([picture(int(v)) for v in chosen], rng))
        count = min(REGIONS_PER_ROOM, len(found.cells))
        regions.append(found.vectors(rng.choice(len(found.cells), count, replace=False)))
        pasted.append(set(owners[chosen].tolist()))
    hubness = _hubness(catalog, owners, regions, pasted)
    log.info("region hubness of %d vectors: %.1f s", len(catalog), time.perf_counter() - started)
    return hubness


def _hubness(
    catalog: np.ndarray, owners: np.ndarray, regions: list[np.ndarray], pasted: list[set[int]]
) -> np.ndarray:
    """Mean cosine of each vector to its K nearest regions of rooms its product is not in."""
    reference = np.concatenate(regions)  # (M, D)
    room_of = np.repeat(np.arange(len(regions)), [len(r) for r in regions])  # (M,)
    k = min(HUBNESS_K, len(reference))
    hubness = np.empty(len(catalog), dtype=np.float32)
    for start in range(0, len(catalog), BLOCK):
        block = catalog[start : start + BLOCK] @ reference.T  # (c, M)
        block_owners = owners[start : start + BLOCK]
        for room, products in enumerate(pasted):
            inside = np.isin(block_owners, list(products))  # (c,) its products are in it
            block[np.ix_(inside, room_of == room)] = -1.0
        hubness[start : start + BLOCK] = np.sort(block, axis=1)[:, -k:].mean(axis=1)
    return hubness


def write_region_hubness(
    release: Path,
    extractor: Embedder,
    entries: Sequence[CatalogEntry],
    matrix: np.ndarray,
    limits: ImageLimits,
) -> None:
    """The release's region hubness file (named for the region side): (P,) float32 in vector
    order, plain .npy, from the (P, D) vectors of the catalog's whole pictures as indexed (the
    crops that may follow them take no part in rooms)."""
    rows: dict[str, int] = {}
    owners = np.array([rows.setdefault(entry.id, len(rows)) for entry in entries])  # (V,)
    encoder = region_encoder_for(extractor)
    pictures = picture_reader([entry.image for entry in entries], limits)
    hubness = region_hubness(encoder, matrix, owners, pictures)
    with (release / region_hubness_file(encoder.side)).open("wb") as handle:
        np.save(handle, hubness, allow_pickle=False)


def picture_reader(paths: Sequence[Path | str], limits: ImageLimits) -> Callable[[int], np.ndarray]:
    """`picture(v)` for `region_hubness`: vector v's catalog picture, decoded large enough to
    paste."""

    def picture(v: int) -> np.ndarray:
        data = read_image_file(Path(paths[v]), limits.max_bytes)
        return decode_image(data, limits=limits, min_side=PICTURE_SIDE)

    return picture
