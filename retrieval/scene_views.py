"""Where an index's scene views sit (`index build --scenes`, index/scene_views.py).

A scene view is a catalog picture furnished as a shopper photographs it (a table among chairs).
It counts at search like the picture itself, with no gate: a furnished table is still that
table. But it is no picture: the room references, the object step's scoring sample, "similar to
this product" and the catalog's description read whole pictures only. So the vectors are laid
out as whole pictures, then scene views, then crops (retrieval/crop_gate.py), and the manifest
says where the pictures end.
"""

from dataclasses import dataclass

import numpy as np

from retrieval.crop_gate import CropGate

PREFIX = "scenes."  # Manifest.extra keys: scenes.first_vector, scenes.count


@dataclass(frozen=True)
class SceneViews:
    """Vector ids `first_vector` .. `first_vector + count - 1` are scene views."""

    first_vector: int  # = how many whole pictures come before them
    count: int

    def to_manifest(self) -> dict[str, int]:
        return {f"{PREFIX}first_vector": self.first_vector, f"{PREFIX}count": self.count}

    @classmethod
    def from_manifest(cls, extra: dict[str, object]) -> "SceneViews | None":
        """The scene views an index's manifest describes; None for an index without them."""
        count = int(extra.get(f"{PREFIX}count", 0))
        return cls(int(extra[f"{PREFIX}first_vector"]), count) if count > 0 else None


@dataclass(frozen=True)
class WithoutScenes:
    """The object finder's gate: scene views never count, crops as their own gate says.

    A room's boxes are scored against whole pictures, each with its region hubness; a scene
    view is a small furnished room with no hubness of its own, so it would win every box of
    a dining room (rooms_bench: first album 0.317 → 0.233 with them, docs/objects.md)."""

    scenes: SceneViews
    crops: CropGate | None = None

    @property
    def count(self) -> int:
        """Crops per picture, as `CropGate.count` (the fetch's spread)."""
        return self.crops.count if self.crops else 0

    def passes(self, scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(N,) bool: which hits count — no scene view, crops only where their gate lets them."""
        start = self.scenes.first_vector
        outside = (ids < start) | (ids >= start + self.scenes.count)
        return outside if self.crops is None else outside & self.crops.passes(scores, ids)
