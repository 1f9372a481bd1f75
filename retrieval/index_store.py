"""A published index opened for reading: FAISS vectors + product metadata + manifest."""

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from retrieval.errors import IndexNotFoundError
from retrieval.extractor import Fingerprint
from retrieval.filtered_search import search_within
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS, Manifest
from retrieval.products import Product, ProductStore

CURRENT = "current"


@dataclass(frozen=True)
class Hit:
    """One product in an answer, with its best image's cosine similarity to the query."""

    product: Product
    score: float


def resolve_release(index_dir: Path) -> Path:
    """The release directory `index_dir/current` points at (or `index_dir` itself if it is one)."""
    if (index_dir / MANIFEST).is_file():
        return index_dir
    current = index_dir / CURRENT
    if not (current / MANIFEST).is_file():
        raise IndexNotFoundError(
            f"no index at {index_dir}; build one: snapfind index build --catalog PATH "
            f"--out {index_dir} (in the container: docker compose run --rm index-build)"
        )
    return current.resolve()


class CatalogIndex:
    """Search over one release. Immutable once open: a reload opens a new one."""

    def __init__(
        self, release: Path, fingerprint: Fingerprint | None = None, where: Path | None = None
    ) -> None:
        self.release = release
        self.manifest = Manifest.read(release / MANIFEST)
        if fingerprint is not None:
            self.manifest.check_compatible(fingerprint, where or release)
        self.store = ProductStore(release / PRODUCTS)
        self._vectors = faiss.read_index(str(release / VECTORS))
        ivf = faiss.try_extract_index_ivf(self._vectors)
        if ivf is not None:
            ivf.nprobe = self.manifest.nprobe  # set once here, never per request
            ivf.make_direct_map()  # lets vector_of() reconstruct stored vectors
        self._first_vector = self._first_vector_of_products()

    def _first_vector_of_products(self) -> np.ndarray:
        """Product row → id of its first image's vector (for "similar to this product")."""
        owners = self.store.product_of_vector
        first = np.full(len(self.store), -1, dtype=np.int64)
        vector_ids = np.arange(len(owners) - 1, -1, -1)
        first[owners[::-1]] = vector_ids  # later writes win: the lowest vector id per product
        return first

    def __len__(self) -> int:
        return len(self.store)

    @property
    def vectors(self) -> int:
        return int(self._vectors.ntotal)

    def categories(self) -> list[str]:
        return self.store.categories()

    def vector_of(self, product_id: str) -> np.ndarray:
        """The stored (D,) vector of a product's first image."""
        row = self.store.row_of(product_id)
        if row is None:
            raise KeyError(product_id)
        return self._vectors.reconstruct(int(self._first_vector[row]))

    def answers(self) -> bool:
        """Whether a search from a stored vector finds a product: the cheap health probe."""
        first = self.store.get([0])[0]
        return bool(self.search(self.vector_of(first.id), k=1))

    def search(
        self,
        vector: np.ndarray,
        k: int = 5,
        category: str | None = None,
        exclude: tuple[str, ...] = (),
    ) -> list[Hit]:
        """The `k` best products for a (D,) unit vector, one hit per product, best first."""
        excluded = {row for pid in exclude if (row := self.store.row_of(pid)) is not None}
        allowed_ids = None
        allowed = self.vectors
        if category is not None:
            in_category = np.isin(self.store.product_of_vector, self.store.rows_in(category))
            ids = np.flatnonzero(in_category).astype(np.int64)
            if ids.size == 0:
                return []
            allowed_ids = ids
            allowed = int(ids.size)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)  # (1, D)
        fetch = min(allowed, max(4 * (k + len(excluded)), 16))
        while True:
            scores, ids = search_within(self._vectors, query, fetch, allowed_ids)
            best = _best_per_product(scores[0], ids[0], self.store.product_of_vector, excluded, k)
            if len(best) >= k or fetch >= allowed:
                break
            fetch = min(allowed, fetch * 4)
        products = self.store.get([row for row, _ in best])
        return [Hit(p, score) for p, (_, score) in zip(products, best, strict=True)]

    def close(self) -> None:
        self.store.close()


def _best_per_product(
    scores: np.ndarray, ids: np.ndarray, owners: np.ndarray, excluded: set[int], k: int
) -> list[tuple[int, float]]:
    """Collapse image hits to products (first = best, as FAISS sorts), skipping -1 padding."""
    seen: set[int] = set(excluded)
    best: list[tuple[int, float]] = []
    for score, vector_id in zip(scores, ids, strict=True):
        if vector_id < 0:
            break
        row = int(owners[vector_id])
        if row not in seen:
            seen.add(row)
            best.append((row, float(score)))
            if len(best) == k:
                break
    return best


def open_index(index_dir: Path, fingerprint: Fingerprint | None = None) -> CatalogIndex:
    """Open the published index under `index_dir`, refusing one made by another extractor."""
    return CatalogIndex(resolve_release(Path(index_dir)), fingerprint, Path(index_dir))
