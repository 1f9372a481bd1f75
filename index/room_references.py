"""`index build --objects`: the object step's two references, from one draw of pseudo-rooms:
the region hubness (which pictures look like any piece of a room) and the room probe (which
photos show a room at all). Plain .npy files in the release, named for the region side."""

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from index.catalog import CatalogEntry
from index.pseudo_rooms import CatalogPictures, Draw, pseudo_rooms
from index.region_hubness import region_hubness
from index.room_probe_training import train_room_probe
from retrieval.embedder import Embedder
from retrieval.limits import ImageLimits
from retrieval.manifest import region_hubness_file, room_probe_file
from retrieval.regions import region_encoder_for

log = logging.getLogger(__name__)


def write_room_references(
    release: Path,
    extractor: Embedder,
    entries: Sequence[CatalogEntry],
    vectors: Iterable[np.ndarray],
    limits: ImageLimits,
    progress: bool = False,
) -> None:
    """`entries`, `vectors`: the catalog's whole pictures and their vectors as indexed, in
    chunks (the crops that may follow them take no part in rooms); `progress`: a bar for each
    of the two sets of region passes."""
    started = time.perf_counter()
    rows: dict[str, int] = {}
    owners = np.array([rows.setdefault(entry.id, len(rows)) for entry in entries])  # (P,)
    kinds = [entry.kind for entry in entries]
    images = [entry.image for entry in entries]
    pictures = CatalogPictures.from_files(owners, images, limits, kinds)
    encoder = region_encoder_for(extractor)
    draw = Draw()
    rooms = pseudo_rooms(encoder, pictures, draw, progress)
    _save(release / region_hubness_file(encoder.side), region_hubness(vectors, owners, rooms))
    probe = train_room_probe(encoder, rooms, pictures, draw.seed, progress)
    _save(release / room_probe_file(encoder.side), probe)
    log.info(
        "room references of %d pictures (%d pseudo-rooms): %.1f s",
        len(owners),
        len(rooms.scenes),
        time.perf_counter() - started,
    )


def _save(path: Path, values: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, values, allow_pickle=False)
