"""Catalog pictures → pseudo-rooms: a few of them, their white cut away, pasted on a wall and a
floor.

No room photos ship with a catalog, yet two build steps of the object finder need rooms made of
the shop's own products: the region hubness (index/region_hubness.py) takes boxes of them as its
reference, and the room probe (index/room_probe_training.py) learns from their whole-photo
vectors how a room differs from a photo of one piece. One draw serves both.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from retrieval.bounded_read import read_image_file
from retrieval.decode import decode_image
from retrieval.limits import ImageLimits
from retrieval.regions import RegionEncoder

PIECES = (3, 7)  # catalog photos pasted per pseudo-room: at least, at most (exclusive)
REGIONS_PER_ROOM = 100  # boxes sampled from each pseudo-room
ROOM_SIZE = (640, 480)  # (width, height) of a pseudo-room
CUTOUT = 235  # a pixel with every channel at or above this is the catalog's white backdrop
PICTURE_SIDE = 256  # catalog photos are decoded at least this large, then pasted smaller
MIN_ROOMS = 32  # the room probe's fewest examples of a room, in a catalog of few pictures


@dataclass(frozen=True)
class Draw:
    """Which pseudo-rooms are composed. The reference is random and the rooms' figures move
    with it (first object's hit@5 0.15–0.27 over seven draws, docs/objects.md), so
    rooms_bench averages over several; a build uses the default."""

    seed: int = 12
    rooms: int = 150  # ≈ 10 s of region passes with Lite0; 600 did not steady the figures


@dataclass(frozen=True)
class CatalogPictures:
    """A catalog's whole pictures (not the crops that may follow them), as these steps read them."""

    owners: np.ndarray  # (P,) the product of each picture
    read: Callable[[int], np.ndarray]  # picture v decoded, at least PICTURE_SIDE
    kinds: tuple[str, ...] = ()  # each picture's product's first category ("": none); () unknown

    @classmethod
    def from_files(
        cls,
        owners: np.ndarray,
        paths: Sequence[Path | str],
        limits: ImageLimits,
        kinds: Sequence[str] = (),
    ) -> "CatalogPictures":
        def read(v: int) -> np.ndarray:
            data = read_image_file(Path(paths[v]), limits.max_bytes)
            return decode_image(data, limits=limits, min_side=PICTURE_SIDE)

        return cls(owners, read, tuple(kinds))

    def __len__(self) -> int:
        return len(self.owners)


@dataclass(frozen=True)
class PseudoRooms:
    """One draw's rooms, as the region encoder sees them."""

    regions: list[np.ndarray]  # (n, D) boxes sampled from each room
    pasted: list[set[int]]  # the products pasted into each room
    scenes: np.ndarray  # (R, D) each room's map mean, before any head (`Regions.scene`)


def pseudo_rooms(
    encoder: RegionEncoder, pictures: CatalogPictures, draw: Draw = Draw(), progress: bool = False
) -> PseudoRooms:
    """The draw's rooms, each of 3–6 of the catalog's pictures: up to one per two pictures (a
    small catalog's products then stay out of most rooms), at least MIN_ROOMS. One region
    pass each: seconds with Lite0, minutes with a large backbone, hence `progress`."""
    rng = np.random.default_rng(draw.seed)
    regions, pasted, scenes = [], [], []
    total = min(draw.rooms, max(MIN_ROOMS, len(pictures) // 2))
    for _ in tqdm(range(total), desc="pseudo-rooms", unit="room", disable=not progress):
        chosen = rng.choice(len(pictures), min(len(pictures), rng.integers(*PIECES)), replace=False)
        found = encoder.regions(compose_room([pictures.read(int(v)) for v in chosen], rng))
        count = min(REGIONS_PER_ROOM, len(found.cells))
        regions.append(found.vectors(rng.choice(len(found.cells), count, replace=False)))
        pasted.append(set(pictures.owners[chosen].tolist()))
        scenes.append(found.scene)
    return PseudoRooms(regions, pasted, np.array(scenes, np.float32))


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
