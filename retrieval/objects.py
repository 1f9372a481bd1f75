"""A room photo → the pieces of furniture in it, each searched on its own.

    image ─▶ regions (one forward pass, hundreds of boxes) ─▶ score each box against the catalog
          ─▶ keep the best boxes that do not overlap (NMS) ─▶ index search per box ─▶ label

A box scores high when it matches some product far better than the catalog's hub pictures
would explain (CSLS against the index's region hubness, `index/region_hubness.py`) and better
than the photo as a whole does: a wall or floor patch resembles the whole room and nothing in
particular, so it scores low.

A plain product photo (one object on white, like the catalog's) gets no object step at all.
"""

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from retrieval.index_store import CatalogIndex, Hit
from retrieval.regions import Box, RegionEncoder, non_max_suppression
from retrieval.results import Page

MAX_OBJECTS = 5
NMS_IOU = 0.3  # boxes overlapping a better one by more than this are the same object
SCORING_DIMS = 128  # boxes are ranked in a PCA space of the catalog: exact search comes after
SCORING_SAMPLE = 20_000  # catalog vectors the PCA and the box scores look at
RERANK_POOL = 50  # nearest products an object's CSLS re-ranking orders (more for deep pages)
LABEL_VOTES = 10  # the label is the category most of this many top products share
WHITE = 230  # a channel value at or above this counts as the catalog's white backdrop
WHITE_BORDER = 0.9  # share of white border pixels that marks a product-on-white photo


@dataclass(frozen=True)
class DetectedObject:
    """One piece of furniture found in a photo, with the products most like it."""

    box: Box  # in the photo's pixels
    score: float  # how clearly the box matches a product (CSLS margin; higher is better)
    label: str  # the category most of its nearest products share
    vector: np.ndarray  # (D,) unit vector, kept so "more" needs no new forward pass
    hits: list[Hit]  # best first; scores are plain cosines, as a whole-photo search gives


def looks_like_product_photo(image: np.ndarray) -> bool:
    """One object on white, as catalogs shoot them: its border is almost all white."""
    height, width = image.shape[:2]
    band = max(1, min(height, width) // 25)
    border = np.concatenate(
        [
            image[:band].reshape(-1, 3),
            image[-band:].reshape(-1, 3),
            image[:, :band].reshape(-1, 3),
            image[:, -band:].reshape(-1, 3),
        ]
    )
    return float((border.min(axis=1) >= WHITE).mean()) >= WHITE_BORDER


class ObjectFinder:
    """Finds and searches the objects of a photo against one open index.

    `hubness`: (V,) per catalog vector; None takes the one stored in the index
    (`CatalogIndex.region_hubness`), and an index built without it (or zeros) corrects only
    with the photo itself. Built once per index; blocking, like `SearchService`.
    """

    def __init__(
        self,
        encoder: RegionEncoder,
        index: CatalogIndex,
        hubness: np.ndarray | None = None,
        max_objects: int = MAX_OBJECTS,
    ) -> None:
        self.encoder = encoder
        self.index = index
        self.max_objects = max_objects
        catalog = index.matrix()  # (V, D)
        owners = index.store.product_of_vector  # (V,)
        step = max(1, len(catalog) // SCORING_SAMPLE)
        sample = catalog[::step]
        _, _, basis = np.linalg.svd(sample, full_matrices=False)  # uncentred: keeps q·c
        self._basis = basis[:SCORING_DIMS].T.copy()  # (D, d)
        self._sample = sample @ self._basis  # (S, d)
        self._sample_owner = owners[::step]
        hubness = index.region_hubness(encoder.side) if hubness is None else hubness
        hubness = np.zeros(len(catalog), np.float32) if hubness is None else hubness
        self._sample_hubness = hubness[::step]
        self._product_hubness = np.full(len(index), np.inf, np.float32)
        np.minimum.at(self._product_hubness, owners, hubness)  # (P,) a product's best image

    def find(self, image: np.ndarray, k: int = 5) -> list[DetectedObject]:
        """The photo's objects, most prominent first; [] for a plain product photo."""
        if looks_like_product_photo(image):
            return []
        regions = self.encoder.regions(image)
        with threadpool_limits(limits=1, user_api="blas"):  # oversubscribed beside TensorFlow
            scores, best, typical = self._score(regions.projected(self._basis))
        scores[regions.flat()] = -np.inf  # wall, floor, ceiling: never an object
        chosen = non_max_suppression(regions.cells, scores, NMS_IOU, self.max_objects, best)
        chosen = [i for i in chosen if np.isfinite(scores[i])]
        found = []
        for i, vector in zip(chosen, regions.vectors(chosen), strict=True):
            hits = self.rank(vector, Page(max(k, LABEL_VOTES)), typical)  # the label sees 10
            box, label = regions.box(i), _label(hits)
            found.append(DetectedObject(box, float(scores[i]), label, vector, hits[:k]))
        return found

    def rank(self, vector: np.ndarray, page: Page, typical: np.ndarray | None = None) -> list[Hit]:
        """`page` of the products for an object's (D,) vector: the index's nearest,
        re-ranked by 2·cos − hubness − likeness to the photo (`typical`, (P,); None when the
        photo is gone, as for a press on the object's button: hubness alone needs no photo).

        Product records are read only for what is shown; the pool does not depend on the page
        while it is within RERANK_POOL, so pages follow each other without gaps or repeats.
        """
        wanted = min(len(self.index), max(RERANK_POOL, 2 * page.end))
        pool = self.index.nearest(vector, wanted, page)
        if not pool:
            return []
        rows = np.array([row for row, _ in pool], dtype=np.int64)
        margins = 2 * np.array([cosine for _, cosine in pool]) - self._product_hubness[rows]
        if typical is not None:
            margins -= typical[rows]
        ranked = [pool[i] for i in np.argsort(-margins, kind="stable")]
        shown = page.end
        while True:  # products sharing a picture merge into one slot: read a few more then
            hits = self.index.hits(ranked[:shown])
            if len(hits) >= page.end or shown >= len(ranked):
                return page.of(hits)
            shown *= 2

    def _score(self, projected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R,) each box's best CSLS margin and (R,) the product giving it; (P,) each
        product's mean cosine to the photo's boxes."""
        typical = projected.mean(axis=0) @ self._sample.T  # (S,) = mean cosine over boxes: linear
        halves = projected @ self._sample.T  # (R, S), approximate cosines
        halves -= 0.5 * (self._sample_hubness + typical)  # in place: margin / 2
        best = halves.argmax(axis=1)  # (R,)
        margins = 2 * halves[np.arange(len(best)), best]
        per_product = np.zeros(len(self.index), np.float32)
        np.maximum.at(per_product, self._sample_owner, typical)
        return margins, self._sample_owner[best], per_product


def _label(hits: list[Hit]) -> str:
    """The category most of the top hits share; ties go to the better-ranked hit's."""
    votes: dict[str, int] = {}
    for hit in hits[:LABEL_VOTES]:
        if hit.product.categories:
            category = hit.product.categories[0]
            votes[category] = votes.get(category, 0) + 1
    return max(votes, key=votes.__getitem__) if votes else "object"
