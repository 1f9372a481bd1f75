"""Real catalog features at scale: IKEA vectors replicated with small perturbations.

Synthetic mixtures flatter some indexes and punish others (PCA/OPQ reached 0.35 recall@5 on
them). Here every vector is a real EfficientNet feature of an IKEA photo, moved a little:

    copy = unit(v + jitter · (real-covariance draw + isotropic draw))

The real-covariance draw follows the top `RANK` principal directions of the catalog's own
features (scaled by their spread), so copies vary the way photos of furniture vary, not in
random directions. Queries are perturbed copies of *held-out* products (never replicated into
the index), as a shopper's photo is never a catalog image.
"""

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

RANK = 64  # principal directions the perturbation follows
HELD_OUT = 0.05  # share of the catalog's products kept out of the index, for queries


def read_vectors(index_path: Path) -> np.ndarray:
    """(n, D) float32 unit rows of a published index (any kind that can reconstruct).

    `A/vectors.faiss+B/vectors.faiss` joins two builds of one catalog side by side (their
    vectors must be in the same order): Lite0 + Lite2 gives real 2 × 1280 = 2560-d features.
    """
    parts = [_read_one(Path(part)) for part in str(index_path).split("+")]
    rows = np.hstack(parts) if len(parts) > 1 else parts[0]  # (n, D·parts)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _read_one(index_path: Path) -> np.ndarray:
    index = faiss.read_index(str(index_path))
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()
    return index.reconstruct_n(0, index.ntotal)


@dataclass(frozen=True)
class Replicator:
    """Draws perturbed copies of a catalog's base vectors."""

    base: np.ndarray  # (B, D) unit rows kept for the index
    held_out: np.ndarray  # (H, D) unit rows kept for queries
    directions: np.ndarray  # (RANK, D): principal directions × their standard deviation
    jitter: float

    @classmethod
    def make(cls, vectors: np.ndarray, jitter: float, seed: int) -> "Replicator":
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(vectors))
        cut = int(len(vectors) * HELD_OUT)
        centred = vectors - vectors.mean(axis=0)
        _, sigma, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (min(B, D), D)
        scale = sigma[:RANK] / np.sqrt(len(vectors))
        directions = (vt[:RANK] * scale[:, None]).astype(np.float32)  # (RANK, D)
        return cls(vectors[order[cut:]], vectors[order[:cut]], directions, jitter)

    @property
    def dim(self) -> int:
        return self.base.shape[1]

    def _perturb(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, dim = rows.shape
        # the real spread has total variance ≈ sum(scale²); match the isotropic part to it
        total = float(np.sqrt((self.directions**2).sum()))
        shaped = rng.standard_normal((n, len(self.directions)), dtype=np.float32) @ self.directions
        iso = rng.standard_normal((n, dim), dtype=np.float32) * (total / dim**0.5)
        moved = rows + self.jitter * (shaped + iso)
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        return moved.astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) copies of base products, each a random product moved a little."""
        return self._perturb(self.base[rng.integers(0, len(self.base), n)], rng)

    def queries(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) perturbed copies of held-out products."""
        return self._perturb(self.held_out[rng.integers(0, len(self.held_out), n)], rng)
