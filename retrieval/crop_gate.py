"""When an indexed crop of a catalog picture may stand for its product (`index build --views`).

An index may hold, after every whole picture, crops of them (index/indexed_views.py). A crop
that is nearly the photo (a shopper's close-up of part of the very product) should find its
product; a crop that is merely alike (a chair's seat resembling a table top) should not pull a
product up, or the second stage takes the wrong kind from it. So a crop counts only from
`min_score` cosine on; below it a product is scored by its whole picture as without crops
(docs/quality.md, fourth pass: ungated crops cost wild tables 0.11, gated ones nothing).
"""

from dataclasses import dataclass

import numpy as np

PREFIX = "views."  # Manifest.extra keys: views.count, views.first_vector, views.min_score
MIN_SCORE = 0.75  # chosen on efficientnet-lite0 screens (docs/quality.md, fourth pass)


@dataclass(frozen=True)
class CropGate:
    """Vector ids from `first_vector` on are crops, counted only from `min_score`."""

    count: int = 0  # crops per picture; 0 = none
    first_vector: int = 0
    min_score: float = MIN_SCORE

    def to_manifest(self) -> dict[str, float | int]:
        return {
            f"{PREFIX}count": self.count,
            f"{PREFIX}first_vector": self.first_vector,
            f"{PREFIX}min_score": self.min_score,
        }

    @classmethod
    def from_manifest(cls, extra: dict[str, object]) -> "CropGate | None":
        """The gate an index's manifest describes; None for an index without crops."""
        count = int(extra.get(f"{PREFIX}count", 0))
        if count <= 0:
            return None
        return cls(
            count,
            int(extra[f"{PREFIX}first_vector"]),
            float(extra.get(f"{PREFIX}min_score", MIN_SCORE)),
        )

    def passes(self, scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(N,) bool: which hits count — whole pictures always, crops from `min_score` on."""
        return (ids < self.first_vector) | (scores >= self.min_score)
