"""A release served from a vector store: products from the release, vectors from Milvus.

Set `SNAPFIND_STORE=milvus://HOST:PORT?collection=NAME` (or `milvus:///FILE.db` for Milvus
Lite) and `snapfind bot` / `snapfind search` search the store instead of the release's FAISS
file. The release (`index_dir/current`) still says what a reply shows (titles, links,
categories) and holds the manifest's rules (the extractor fingerprint, the no-match
threshold); `snapfind index build --store` upserts changed products into the store in place,
so a changed product's new vector is what the very next query searches — no reload, no
restart. A product the store has but the served release does not yet know (added by a build
whose release is not loaded yet) is left out until the bot reloads that release.

Ranking is the store's cosine order, one hit per product, then what the release's manifest
asks of a FAISS release too: the category vote over the first neighbours and one slot per
picture, which need only the products' records. Query expansion (off in the shipped stage)
needs the neighbours' vectors in process and is not applied.
"""

from pathlib import Path

import numpy as np

from retrieval.errors import ConfigError, IndexMismatchError
from retrieval.extractor import Fingerprint
from retrieval.index_store import describe_release, resolve_release
from retrieval.manifest import MANIFEST, PRODUCTS, Manifest
from retrieval.no_match import MANIFEST_KEY as NO_MATCH_KEY
from retrieval.no_match import is_no_match
from retrieval.products import ProductStore
from retrieval.rerank import RerankParams, staged
from retrieval.results import FIRST_PAGE, Hit, Page
from retrieval.store_target import milvus_target
from retrieval.vector_store import VectorStore


class StoreIndex:
    """What `SearchService` asks of an index (`search`, `vector_of`, `no_match`, `answers`,
    `info`), answered by a vector store plus a release's products."""

    def __init__(self, release: Path, store: VectorStore, fingerprint: Fingerprint) -> None:
        self.release = release
        self.manifest = Manifest.read(release / MANIFEST)
        self.manifest.check_compatible(fingerprint, release)
        self.store = ProductStore(release / PRODUCTS)
        self._vectors = store
        self.rerank = RerankParams.from_manifest(self.manifest.extra)
        threshold = self.manifest.extra.get(NO_MATCH_KEY)
        self.no_match_below = float(threshold) if threshold is not None else None
        self.info = describe_release(release, self.manifest, self.store, self.manifest.vectors)

    def search(self, vector: np.ndarray, page: Page = FIRST_PAGE) -> list[Hit]:
        """`page` of the products ranked by the store, best first, after the manifest's vote."""
        want = self.rerank.candidates(page.end)
        while True:
            found = self._vectors.search(vector, want, page.category, page.exclude)
            known = [
                (row, f.score)
                for f in found
                if (row := self.store.row_of(f.product_id)) is not None
            ]
            hits = self.store.hits(staged(known, self.store.categories_of, self.rerank), page.end)
            if len(hits) >= page.end or len(found) < want:
                return page.of(hits)
            want *= 2  # some were products this release does not know yet, or shared a picture

    def __len__(self) -> int:
        return len(self.store)

    def categories(self) -> list[str]:
        return self.store.categories()

    @property
    def pictures(self) -> int:
        """Not served, as `picture_vectors`: the object step needs the vectors here."""
        raise _vectors_elsewhere()

    def picture_vectors(self, every: int = 1) -> np.ndarray:
        """Not served: every vector lives in the store (`search --objects` needs them here)."""
        raise _vectors_elsewhere()

    def vector_of(self, product_id: str) -> np.ndarray:
        """The stored (D,) vector of a product the release knows; KeyError otherwise."""
        if self.store.row_of(product_id) is None:
            raise KeyError(product_id)
        return self._vectors.vector_of(product_id)

    def no_match(self, hits: list[Hit]) -> bool:
        return is_no_match(max((h.score for h in hits), default=None), self.no_match_below)

    def answers(self) -> bool:
        """Whether the store answers a search from one of its stored vectors."""
        first = self.store.get([0])[0]
        try:
            return bool(self.search(self.vector_of(first.id), Page(1)))
        except KeyError:
            return False

    def close(self) -> None:
        self.store.close()


def store_opener(store: str, fingerprint: Fingerprint):
    """`open(index_dir, fingerprint)` for `SearchService`: each release it opens (at start and
    on every reload) searches the one store connection made here; refuses a store of another
    extractor (`IndexMismatchError`) or a missing collection (`IndexNotFoundError`)."""
    from retrieval.milvus_store import MilvusStore  # pymilvus only where a store is named

    uri, collection = milvus_target(store)
    connection = MilvusStore(uri, collection, fingerprint)

    def open_release(index_dir: Path, running: Fingerprint) -> StoreIndex:
        if running != fingerprint:
            raise IndexMismatchError("the store was opened for another extractor")
        return StoreIndex(resolve_release(Path(index_dir)), connection, running)

    return open_release


def _vectors_elsewhere() -> ConfigError:
    return ConfigError(
        "this needs the index's own vectors, not a vector store: unset SNAPFIND_STORE"
    )
