"""A release served from a vector store: products from the release, vectors from Milvus.

Set `SNAPFIND_STORE=milvus://HOST:PORT?collection=NAME` (or `milvus:///FILE.db` for Milvus
Lite) and `snapfind bot` / `snapfind search` search the store instead of the release's FAISS
file. The release (`index_dir/current`) still says what a reply shows (titles, links,
categories) and holds the manifest's rules (the extractor fingerprint, the no-match
threshold); `snapfind index build --store` upserts changed products into the store in place,
so a changed product's new vector is what the very next query searches — no reload, no
restart. A product the store has but the served release does not yet know (added by a build
whose release is not loaded yet) is left out until the bot reloads that release. A store that
holds none of a sample of the release's products (another shop's collection, or one never
synced) is refused when serving starts: it would answer every photo "no good match".

Ranking is the store's cosine order, one hit per product, then what the release's manifest
asks of a FAISS release too: the category vote over the first neighbours and one slot per
picture, which need only the products' records. Query expansion (off in the shipped stage)
needs the neighbours' vectors in process and is not applied.

Room photos' objects are found as for a FAISS release (`retrieval.objects`): the release holds
the region hubness and room probe, the store a sample of the pictures' vectors (read once per
release, by key) and each object's nearest products. The store mirrors whole pictures only, so
an object's products never come from an indexed crop or scene view.
"""

from pathlib import Path

import numpy as np

from retrieval.errors import ConfigError, IndexMismatchError
from retrieval.extractor import Fingerprint
from retrieval.index_store import describe_release, resolve_release, search_rules
from retrieval.manifest import MANIFEST, PRODUCTS, Manifest
from retrieval.no_match import is_no_match
from retrieval.object_references import read_region_hubness, read_room_probe, whole_pictures
from retrieval.products import ProductStore
from retrieval.rerank import staged
from retrieval.results import FIRST_PAGE, Hit, Page
from retrieval.room_probe import RoomProbe
from retrieval.store_target import milvus_target
from retrieval.vector_store import ProductScore, VectorStore, picture_key, picture_keys

CHECKED = 64  # products of the first release served looked up in the store, in one query


class StoreIndex:
    """What `SearchService` asks of an index (`search`, `vector_of`, `no_match`, `answers`,
    `info`), answered by a vector store plus a release's products."""

    def __init__(self, release: Path, store: VectorStore, fingerprint: Fingerprint) -> None:
        self.release = release
        self.manifest = Manifest.read(release / MANIFEST)
        self.manifest.check_compatible(fingerprint, release)
        self.store = ProductStore(release / PRODUCTS)
        self._vectors = store
        self.rerank, self.no_match_below = search_rules(release, self.manifest)
        self.vectors = len(self.store.product_of_vector)  # the release's, as it wrote them
        self.pictures = whole_pictures(release, self.manifest, self.vectors)
        self.info = describe_release(release, self.manifest, self.store, self.pictures)
        self.scene_views = None  # a store mirrors whole pictures only (index/store_sync.py)

    def check_holds_release(self) -> None:
        """Refuse a store that holds none of up to `CHECKED` products spread over the release
        (each product's first picture, `<id>#0`), in one query."""
        owners = self.store.product_of_vector[: self.pictures]  # (P,) product row per picture
        if not len(owners):
            return
        spread = owners[np.linspace(0, len(owners) - 1, min(CHECKED, len(owners))).astype(int)]
        keys = [picture_key(self.store.id_of(row), 0) for row in dict.fromkeys(spread.tolist())]
        if not self._vectors.vectors_of(keys):
            raise IndexMismatchError(
                f"the vector store holds none of {len(keys)} products of {self.release} "
                f"(another catalog's collection, or never synced): sync it with "
                f"snapfind index build --store, or point SNAPFIND_STORE at this catalog's"
            )

    def search(self, vector: np.ndarray, page: Page = FIRST_PAGE) -> list[Hit]:
        """`page` of the products ranked by the store, best first, after the manifest's vote."""
        want = self.rerank.candidates(page.end)
        while True:
            found = self._vectors.search(vector, want, page.category, page.exclude)
            known = self._known(found)
            hits = self.store.hits(staged(known, self.store.categories_of, self.rerank), page.end)
            if len(hits) >= page.end or len(found) < want:
                return page.of(hits)
            want *= 2  # some were products this release does not know yet, or shared a picture

    def __len__(self) -> int:
        return len(self.store)

    def categories(self) -> list[str]:
        return self.store.categories()

    def picture_sample(self, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(S,) vector ids of every `every`-th whole picture of the release that the store
        holds, and (S, D) their vectors as stored: a picture a later sync changed is read as
        it is now, one it removed is left out."""
        owners = self.store.product_of_vector[: self.pictures]
        ids = np.arange(0, len(owners), every)
        numbered = picture_keys(self.store.id_of(row) for row in owners.tolist())
        keys = [key for i, key in enumerate(numbered) if i % every == 0]  # those of `ids`
        stored = self._vectors.vectors_of(keys)
        kept = [i for i, key in enumerate(keys) if key in stored]
        if not kept:
            raise ConfigError(f"the store holds none of {self.release}'s pictures: sync it first")
        return ids[kept], np.stack([stored[keys[i]] for i in kept])

    def region_hubness(self, side: int) -> np.ndarray | None:
        """(P,) the whole pictures' region hubness at `side` px (`read_region_hubness`)."""
        return read_region_hubness(self.release, side, self.pictures, self.vectors)

    def room_probe(self, side: int) -> RoomProbe | None:
        """Which photos show a room, at `side` px (`read_room_probe`)."""
        return read_room_probe(self.release, self.manifest, side)

    def nearest(
        self, vector: np.ndarray, k: int, where: Page = FIRST_PAGE
    ) -> list[tuple[int, float]]:
        """The `k` products the store finds nearest a (D,) unit vector within `where`'s
        category and exclusions, as (product row, cosine), without a second stage or product
        records (`CatalogIndex.nearest`); products this release does not know are left out."""
        return self._known(self._vectors.search(vector, k, where.category, where.exclude))

    def _known(self, found: list[ProductScore]) -> list[tuple[int, float]]:
        """(product row, cosine) of the products found that this release knows, order kept."""
        rows = [(self.store.row_of(f.product_id), f.score) for f in found]
        return [(row, score) for row, score in rows if row is not None]

    def hits(self, best: list[tuple[int, float]], slots: int | None = None) -> list[Hit]:
        """(product row, score) pairs → the answer's hits (`ProductStore.hits`)."""
        return self.store.hits(best, slots)

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
    checked = False

    def open_release(index_dir: Path, running: Fingerprint) -> StoreIndex:
        """The first release opened must be in the store (`check_holds_release`); a later one
        is not checked, as a build publishes it before its sync has filled the store."""
        nonlocal checked
        if running != fingerprint:
            raise IndexMismatchError("the store was opened for another extractor")
        index = StoreIndex(resolve_release(Path(index_dir)), connection, running)
        if not checked:
            index.check_holds_release()
            checked = True
        return index

    return open_release
