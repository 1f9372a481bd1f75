"""The vector-store seam: where catalog vectors live and are searched, behind one small Protocol.

FAISS in the process is the default (a published index directory, `CatalogIndex`); a catalog
past one machine lives in a vector database (`retrieval.milvus_store.MilvusStore`). Both speak
in products, not images: a product with several photos has several vectors and comes back once,
with its best photo's cosine. `FaissStore` here is the exact, in-memory reference the others are
checked against.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np


def picture_key(product_id: str, number: int) -> str:
    """A stored image's key: its product's id and which of that product's pictures it is (0:
    the first in catalog order), so a release's vector ids map to the store's rows."""
    return f"{product_id}#{number}"


def picture_keys(products: Iterable[str]) -> Iterator[str]:
    """The `picture_key` of each picture, given its product's id in catalog order: the sync
    numbers a catalog's images so, and a release reads its whole pictures back so."""
    seen: dict[str, int] = {}
    for product_id in products:
        number = seen.get(product_id, 0)
        seen[product_id] = number + 1
        yield picture_key(product_id, number)


@dataclass(frozen=True)
class StoredVector:
    """One image's unit vector, with what a filter or an update needs to know of its product."""

    key: str  # unique per image: `picture_key`
    product_id: str
    categories: tuple[str, ...]
    vector: np.ndarray  # (D,) float32, unit length
    content: str = ""  # hash of image + metadata: a changed product gets a new one


@dataclass(frozen=True)
class ProductScore:
    """A product found, with the cosine of its best image to the query."""

    product_id: str
    score: float


class VectorStore(Protocol):
    """Add, remove, search and read back catalog vectors."""

    def add(self, items: Sequence[StoredVector]) -> None:
        """Insert or replace vectors by key."""

    def remove(self, product_ids: Sequence[str]) -> None:
        """Delete every vector of these products."""

    def search(
        self, vector: np.ndarray, k: int, category: str | None = None, exclude: Sequence[str] = ()
    ) -> list[ProductScore]:
        """The `k` best products (one hit each, best first), within `category`, minus `exclude`."""

    def vector_of(self, product_id: str) -> np.ndarray:
        """A stored (D,) vector of the product (its first image's); KeyError if absent."""

    def vectors_of(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored (D,) vectors of those `keys` the store holds."""


def best_per_product(
    hits: Sequence[tuple[str, float]], exclude: Sequence[str], k: int
) -> list[ProductScore]:
    """Collapse (product id, score) image hits, best first, to the first `k` products."""
    seen, best = set(exclude), []
    for product_id, score in hits:
        if product_id not in seen:
            seen.add(product_id)
            best.append(ProductScore(product_id, float(score)))
            if len(best) == k:
                break
    return best


class FaissStore:
    """Exact inner-product search in memory: the embedded reference implementation."""

    def __init__(self, dim: int) -> None:
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._items: dict[int, StoredVector] = {}
        self._ids: dict[str, int] = {}  # key → faiss id
        self._next = 0

    def add(self, items: Sequence[StoredVector]) -> None:
        stale = [self._ids[item.key] for item in items if item.key in self._ids]
        self._drop(stale)
        ids = np.arange(self._next, self._next + len(items), dtype=np.int64)
        self._next += len(items)
        for faiss_id, item in zip(ids.tolist(), items, strict=True):
            self._items[faiss_id], self._ids[item.key] = item, faiss_id
        if items:
            self._index.add_with_ids(np.stack([item.vector for item in items]), ids)

    def remove(self, product_ids: Sequence[str]) -> None:
        gone = set(product_ids)
        self._drop([i for i, item in self._items.items() if item.product_id in gone])

    def _drop(self, faiss_ids: list[int]) -> None:
        if faiss_ids:
            self._index.remove_ids(np.asarray(faiss_ids, dtype=np.int64))
            for faiss_id in faiss_ids:
                del self._ids[self._items.pop(faiss_id).key]

    def search(
        self, vector: np.ndarray, k: int, category: str | None = None, exclude: Sequence[str] = ()
    ) -> list[ProductScore]:
        allowed = [
            i
            for i, item in self._items.items()
            if category is None or category.lower() in (c.lower() for c in item.categories)
        ]
        if not allowed:
            return []
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, "int64")))
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)  # (1, D)
        scores, ids = self._index.search(query, len(allowed), params=params)
        hits = [
            (self._items[i].product_id, s) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0
        ]
        return best_per_product(hits, exclude, k)

    def vector_of(self, product_id: str) -> np.ndarray:
        for item in sorted(self._items.values(), key=lambda item: item.key):
            if item.product_id == product_id:
                return item.vector
        raise KeyError(product_id)

    def vectors_of(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {key: self._items[self._ids[key]].vector for key in keys if key in self._ids}
