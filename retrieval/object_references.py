"""What the object step reads of a release besides its vectors, checked the same way whatever
serves the vectors (the release's FAISS file or a vector store): how many stored vectors are
whole pictures, their region hubness and the room probe, written by `index build --objects`.
"""

from pathlib import Path

import numpy as np

from retrieval.crop_gate import CropGate
from retrieval.manifest import (
    MANIFEST,
    Manifest,
    damaged,
    region_hubness_file,
    room_probe_file,
    whole_probe_file,
)
from retrieval.room_probe import RoomProbe
from retrieval.scene_views import SceneViews


def whole_pictures(release: Path, manifest: Manifest, vectors: int) -> int:
    """How many of a release's `vectors` are whole pictures: ids below it (scene views and
    crops, if any, follow, as its manifest says; a manifest that says it wrongly is damaged)."""
    try:
        scenes = SceneViews.from_manifest(manifest.extra)
        crops = CropGate.from_manifest(manifest.extra)
    except (KeyError, ValueError, TypeError) as error:
        raise damaged(release / MANIFEST, f"its views are misdescribed: {error!r}") from None
    pictures = scenes.first_vector if scenes else crops.first_vector if crops else vectors
    views_end = scenes.first_vector + scenes.count if scenes else pictures
    if not 0 < pictures <= views_end <= vectors:
        raise damaged(release / MANIFEST, f"{pictures} pictures of {vectors} vectors")
    return pictures


def read_region_hubness(release: Path, side: int, pictures: int, vectors: int) -> np.ndarray | None:
    """(`pictures`,) how much each whole picture resembles any piece of a room seen at `side`
    px (the object finder's CSLS term); None for an index built without it, or at another
    side."""
    path = release / region_hubness_file(side)
    values = _optional_array(path)
    if values is None:
        return None
    if values.shape == (vectors,):  # written for crops too, before they were left out
        values = values[:pictures]
    if values.shape != (pictures,) or values.dtype != np.float32 or not np.isfinite(values).all():
        raise damaged(path, f"{values.dtype} {values.shape} for {pictures} pictures, or NaN")
    return values


def read_room_probe(release: Path, manifest: Manifest, side: int) -> RoomProbe | None:
    """Which photos show a room, for region vectors at `side` px; None for an index built
    without it (before it existed), at another side, or with a tuned head before the probe
    judged the backbone's own vectors."""
    path = release / room_probe_file(side)
    if not path.exists() and not manifest.fingerprint.head:
        path = release / whole_probe_file(side)  # the same vectors without a head
    values = _optional_array(path)
    if values is None:
        return None
    dim = manifest.fingerprint.dim
    if values.shape != (dim + 1,) or values.dtype != np.float32 or not np.isfinite(values).all():
        raise damaged(path, f"{values.dtype} {values.shape} for dimension {dim}, or NaN")
    return RoomProbe.from_array(values)


def _optional_array(path: Path) -> np.ndarray | None:
    """A plain .npy file an index may lack (None); one that does not read is damaged."""
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty file
        raise damaged(path, str(error)) from None
