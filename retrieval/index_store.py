"""A published index opened for reading: FAISS vectors + product metadata + manifest."""

import sqlite3
from pathlib import Path

import faiss
import numpy as np

from retrieval.crop_gate import CropGate
from retrieval.errors import IndexNotFoundError, SnapfindError
from retrieval.extractor import Fingerprint
from retrieval.filtered_search import search_within
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS, Manifest, damaged
from retrieval.no_match import MANIFEST_KEY as NO_MATCH_KEY
from retrieval.no_match import is_no_match
from retrieval.object_references import read_region_hubness, read_room_probe, whole_pictures
from retrieval.products import ProductStore
from retrieval.rerank import RerankParams, expand_query, staged
from retrieval.results import FIRST_PAGE, CatalogInfo, Hit, Page
from retrieval.room_probe import RoomProbe
from retrieval.scene_views import SceneViews, WithoutScenes

CURRENT = "current"
ReleaseStamp = tuple[str, int, int]


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


def release_stamp(index_dir: Path | None) -> ReleaseStamp | None:
    """Identity of the release `index_dir` points at (its path, manifest inode and mtime), so
    a newly published release is told from the served one; None if there is none."""
    if index_dir is None:
        return None
    try:
        release = resolve_release(index_dir)
        info = (release / MANIFEST).stat()
    except (SnapfindError, OSError):
        return None
    return (str(release), info.st_ino, info.st_mtime_ns)


class CatalogIndex:
    """Search over one release. Immutable once open: a reload opens a new one."""

    def __init__(
        self, release: Path, fingerprint: Fingerprint | None = None, where: Path | None = None
    ) -> None:
        self.release = release
        self.manifest = Manifest.read(release / MANIFEST)
        if fingerprint is not None:
            self.manifest.check_compatible(fingerprint, where or release)
        try:
            self.store = ProductStore(release / PRODUCTS)
        except (sqlite3.Error, ValueError, TypeError) as error:  # not a database, bad JSON
            raise damaged(release / PRODUCTS, str(error)) from None
        try:
            self._vectors = faiss.read_index(str(release / VECTORS), _read_flags(self.manifest))
        except RuntimeError as error:  # FAISS reports truncation and bad magic as RuntimeError
            raise damaged(release / VECTORS, str(error).strip().splitlines()[-1]) from None
        if self._vectors.ntotal != len(self.store.product_of_vector):
            raise damaged(
                release / VECTORS,
                f"{self._vectors.ntotal} vectors for {len(self.store.product_of_vector)} images",
            )
        ivf = faiss.try_extract_index_ivf(self._vectors)
        if ivf is not None:
            ivf.nprobe = self.manifest.nprobe  # set once here, never per request
            ivf.make_direct_map()  # lets vector_of() reconstruct stored vectors
        self._first_vector = self._first_vector_of_products()
        self.rerank, self.no_match_below = search_rules(release, self.manifest)
        self.pictures = whole_pictures(release, self.manifest, self.vectors)  # checks the views
        self.crop_gate = CropGate.from_manifest(self.manifest.extra)  # None: no crops
        self.scene_views = SceneViews.from_manifest(self.manifest.extra)  # None: no scenes
        self._object_gate = (  # what `nearest` ranks for the object finder: no scene views
            self.crop_gate
            if self.scene_views is None
            else WithoutScenes(self.scene_views, self.crop_gate)
        )
        self.info = self._describe()  # a release never changes: described once, off the loop

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

    def _describe(self) -> CatalogInfo:
        """The plain description front ends show (its images: pictures, not their crops)."""
        return describe_release(self.release, self.manifest, self.store, self.pictures)

    def vector_of(self, product_id: str) -> np.ndarray:
        """The stored (D,) vector of a product's first image."""
        row = self.store.row_of(product_id)
        if row is None:
            raise KeyError(product_id)
        return self._vectors.reconstruct(int(self._first_vector[row]))

    def no_match(self, hits: list[Hit]) -> bool:
        """Whether nothing in an answer is similar enough to call it a match."""
        return is_no_match(max((h.score for h in hits), default=None), self.no_match_below)

    def picture_vectors(self, every: int = 1) -> np.ndarray:
        """(⌈P / every⌉, D) float32: every `every`-th whole picture's stored vector, in vector-id
        order, without the crops and scene views that may follow them; a sample of a large
        catalog reads only its own rows."""
        return self._vectors.reconstruct_batch(np.arange(0, self.pictures, every))

    def picture_sample(self, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(S,) the vector ids of `picture_vectors(every)` and those vectors: what room photos'
        boxes are scored against (`StoreIndex` may hold fewer)."""
        return np.arange(0, self.pictures, every), self.picture_vectors(every)

    def region_hubness(self, side: int) -> np.ndarray | None:
        """(P,) the whole pictures' region hubness at `side` px (`read_region_hubness`)."""
        return read_region_hubness(self.release, side, self.pictures, self.vectors)

    def room_probe(self, side: int) -> RoomProbe | None:
        """Which photos show a room, at `side` px (`read_room_probe`)."""
        return read_room_probe(self.release, self.manifest, side)

    def answers(self) -> bool:
        """Whether a search from a stored vector finds a product: the cheap health probe."""
        first = self.store.get([0])[0]
        return bool(self.search(self.vector_of(first.id), Page(1)))

    def search(
        self,
        vector: np.ndarray,
        page: Page = FIRST_PAGE,
        rerank: RerankParams | None = None,
        *,
        scenes: bool = True,
    ) -> list[Hit]:
        """`page` of the products ranked for a (D,) unit vector: one slot per picture, best
        first.

        The second stage (`rerank`, by default the manifest's) may reorder the first
        neighbours; scores stay the cosine similarity to `vector`. `scenes=False` leaves the
        scene views out, as the object finder ranks (`nearest`).
        """
        gate = self.crop_gate if scenes else self._object_gate
        stage = self.rerank if rerank is None else rerank
        excluded, allowed = self._filters(page)
        owners = self.store.product_of_vector
        if allowed is not None and allowed.size == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)  # (1, D)
        probe = query
        if stage.expands:
            reachable = self.vectors if allowed is None else int(allowed.size)
            scores, ids = search_within(self._vectors, query, min(reachable, stage.qe_top), allowed)
            found = ids[0] >= 0
            neighbours = self._vectors.reconstruct_batch(ids[0][found])  # (M, D)
            probe = expand_query(query[0], neighbours, scores[0][found], stage.qe_alpha)[None]
        want = stage.candidates(page.end)
        while True:
            best = top_products(self._vectors, probe, owners, want, excluded, allowed, gate)
            if stage.expands:
                best = self._rescored(query, best)
            hits = self.hits(staged(best, self.store.categories_of, stage), page.end)
            if len(hits) >= page.end or len(best) < want:
                return page.of(hits)
            want *= 2

    def nearest(
        self, vector: np.ndarray, k: int, where: Page = FIRST_PAGE
    ) -> list[tuple[int, float]]:
        """The `k` products nearest a (D,) unit vector that `where`'s category and exclusions
        allow, as (product row, cosine), each at its best picture or crop, never a scene view
        (`WithoutScenes`): no second stage and no product records, for a caller that re-ranks
        first and reads only the records it shows (`hits`), like the object finder."""
        excluded, allowed = self._filters(where)
        if allowed is not None and allowed.size == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)  # (1, D)
        owners = self.store.product_of_vector
        return top_products(self._vectors, query, owners, k, excluded, allowed, self._object_gate)

    def hits(self, best: list[tuple[int, float]], slots: int | None = None) -> list[Hit]:
        """(product row, score) pairs, best first → the answer's hits, products showing the
        same picture merged into one slot (so there may be fewer); `slots`: only the first
        that many, reading only their records."""
        return self.store.hits(best, slots)

    def _filters(self, page: Page) -> tuple[set[int], np.ndarray | None]:
        """The product rows `page` skips, and the vector ids it allows (None: all; empty:
        none)."""
        store = self.store
        excluded = {row for pid in page.exclude if (row := store.row_of(pid)) is not None}
        if page.category is None:
            return excluded, None
        in_category = np.isin(store.product_of_vector, store.rows_in(page.category))
        return excluded, np.flatnonzero(in_category).astype(np.int64)

    def _rescored(
        self, query: np.ndarray, best: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
        """Cosine of the original (1, D) query to each product's first image, order kept."""
        if not best:
            return best
        ids = self._first_vector[[row for row, _ in best]]
        scores = self._vectors.reconstruct_batch(ids) @ query[0]  # (N,)
        return [(row, float(s)) for (row, _), s in zip(best, scores, strict=True)]

    def close(self) -> None:
        self.store.close()


def _read_flags(manifest: Manifest) -> int:
    """A refine index (`…,RFlat`) is memory-mapped: its exact vectors, read only to re-rank a
    short list, stay on disk (page cache) instead of in the process (docs/scale.md)."""
    return faiss.IO_FLAG_MMAP_IFC if manifest.index_key.endswith(",RFlat") else 0


def search_rules(release: Path, manifest: Manifest) -> tuple[RerankParams, float | None]:
    """The second stage and the no-match threshold a release's manifest asks of any search of
    it; a hand-edited value that is no number is a damaged manifest, not a traceback."""
    try:
        threshold = manifest.extra.get(NO_MATCH_KEY)
        rerank = RerankParams.from_manifest(manifest.extra)
        return rerank, None if threshold is None else float(threshold)
    except (ValueError, TypeError) as error:
        raise damaged(release / MANIFEST, f"a rule is no number: {error}") from None


def describe_release(
    release: Path, manifest: Manifest, products: ProductStore, images: int
) -> CatalogInfo:
    """What front ends show of a served release, whatever searches its vectors."""
    fingerprint = manifest.fingerprint
    return CatalogInfo(
        products=len(products),
        images=images,
        categories=tuple(products.categories()),
        release=release.name,
        built_at=manifest.built_at,
        catalog=manifest.catalog,
        backbone=fingerprint.backbone,
        model_name=manifest.model_name,
        input_size=fingerprint.input_size,
        dim=fingerprint.dim,
        weights_id=fingerprint.weights_id,
    )


def top_products(
    index: faiss.Index,
    query: np.ndarray,
    owners: np.ndarray,
    k: int,
    excluded: set[int] | frozenset[int] = frozenset(),
    allowed: np.ndarray | None = None,
    gate: CropGate | WithoutScenes | None = None,
) -> list[tuple[int, float]]:
    """The `k` best (owner, score) pairs for a (1, D) query: each owner (product) at its
    best vector, skipping `excluded`, only among vector ids `allowed` if given, crops only
    where `gate` lets them count. The one ranking both the product and the evaluation use.

    Fetches a few vectors per wanted product and asks for more only when too many belong to
    the same products; `owners` maps vector id → product row, (V,) int.
    """
    reachable = index.ntotal if allowed is None else int(allowed.size)
    spread = 1 + (gate.count if gate else 0)  # vectors per product
    fetch = min(reachable, max(4 * (k + len(excluded)), 16) * spread)
    while True:
        scores, ids = search_within(index, query, fetch, allowed)  # filters stay right on ANN
        if gate is not None:
            kept = gate.passes(scores[0], ids[0])
            scores, ids = scores[:, kept], ids[:, kept]
        best = _best_per_product(scores[0], ids[0], owners, set(excluded), k)
        if len(best) >= k or fetch >= reachable:
            return best
        fetch = min(reachable, fetch * 4)


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
