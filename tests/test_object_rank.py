"""An object's products from its vector alone: hub pictures sink, pages follow each other.

A press on an object's button (or its More) has only the object's cached vector; it must rank
as the object's first album did, less the photo's own term. The finder is built over a small
in-memory index here (no network, no FAISS) so each ranking can be worked out by hand.
"""

import numpy as np
import pytest

from retrieval import objects
from retrieval.objects import ObjectFinder
from retrieval.regions import Box
from retrieval.rerank import DEFAULT
from retrieval.results import FIRST_PAGE, Hit, Page, Product

DIM = 16


class Store:
    def __init__(self, categories: list[str]) -> None:
        self.product_of_vector = np.arange(len(categories))
        self.categories_of = lambda row: (categories[row],)


class TinyIndex:
    """One picture per product; `nearest` by exact cosine, as `CatalogIndex.nearest` is."""

    def __init__(self, vectors: np.ndarray, categories: list[str]) -> None:
        self.vectors, self.categories = vectors, categories
        self.store = Store(categories)
        self.rerank = DEFAULT  # what `index build` writes: the first product's kind first
        self.records_read = 0

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def pictures(self) -> int:
        return len(self.vectors)

    def picture_vectors(self, every: int = 1) -> np.ndarray:
        self.sampled = every
        return self.vectors[::every]

    def picture_sample(self, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(0, len(self.vectors), every), self.picture_vectors(every)

    def nearest(self, vector, k, where=FIRST_PAGE) -> list[tuple[int, float]]:
        cosines = self.vectors @ vector
        rows = [
            int(r)
            for r in np.argsort(-cosines, kind="stable")
            if f"p{r}" not in where.exclude and where.category in (None, self.categories[r])
        ]
        return [(r, float(cosines[r])) for r in rows[:k]]

    def hits(self, best: list[tuple[int, float]]) -> list[Hit]:
        self.records_read += len(best)
        product = lambda r: Product(f"p{r}", f"P{r}", (self.categories[r],), None)  # noqa: E731
        return [Hit(product(r), score) for r, score in best]


def _catalog(count: int = 12) -> np.ndarray:
    """Orthonormal pictures: a query's cosine to each is what it is built from."""
    basis, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(DIM, DIM)))
    return basis[:count].astype(np.float32)


class RankOnly:
    """The encoder side of a finder that only ranks vectors: no photo is ever encoded."""

    def scoring_basis(self, basis: np.ndarray) -> np.ndarray:
        return basis


def _finder(hubness: np.ndarray, categories: list[str] | None = None) -> ObjectFinder:
    vectors = _catalog(len(hubness))
    categories = categories or ["sofa"] * len(hubness)
    index = TinyIndex(vectors, categories)
    return ObjectFinder(RankOnly(), index, hubness)  # type: ignore[arg-type]


def _ids(hits: list[Hit]) -> list[str]:
    return [h.product.id for h in hits]


def test_a_hub_picture_sinks_below_what_the_object_matches_almost_as_well() -> None:
    finder = _finder(np.zeros(12, np.float32))
    query = finder.index.picture_vectors()[3] + 0.9 * finder.index.picture_vectors()[7]
    query /= np.linalg.norm(query)
    plain = _ids(finder.rank(query, Page(2)))
    assert plain[0] == "p3"  # the nearer of the two, nothing to correct for
    hubness = np.zeros(12, np.float32)
    hubness[3] = 0.5  # p3 is like every room: the hub term outweighs its small lead
    corrected = _finder(hubness)
    assert _ids(corrected.rank(query, Page(2)))[0] == "p7"
    scores = [h.score for h in corrected.rank(query, Page(12))]
    assert max(scores) == pytest.approx(float(finder.index.picture_vectors()[3] @ query), abs=1e-6)


def test_the_photo_term_sinks_products_that_look_like_the_whole_room() -> None:
    finder = _finder(np.zeros(12, np.float32))
    query = finder.index.picture_vectors()[3] + 0.9 * finder.index.picture_vectors()[7]
    query /= np.linalg.norm(query)
    typical = np.zeros(12, np.float32)
    typical[3] = 0.5
    assert _ids(finder.rank(query, Page(1)))[0] == "p3"
    assert _ids(finder.rank(query, Page(1), typical))[0] == "p7"


def test_pages_follow_each_other_without_gaps_or_repeats() -> None:
    hubness = np.linspace(0.0, 0.4, 12).astype(np.float32)[::-1].copy()
    finder = _finder(hubness)
    query = finder.index.picture_vectors()[0]
    whole = _ids(finder.rank(query, Page(9)))
    pages = [
        pid for offset in (0, 3, 6) for pid in _ids(finder.rank(query, Page(3, offset=offset)))
    ]
    assert pages == whole and len(set(whole)) == 9


def test_a_deep_page_keeps_the_first_pages_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the nearest RERANK_POOL are re-ranked: a far picture with no hubness (p11) does not
    jump ahead of them when a page reaches past the pool (a press on More, or a bench ranking
    the whole catalog), so the deep ranking starts with the first page."""
    monkeypatch.setattr(objects, "RERANK_POOL", 4)
    hubness = np.full(12, 0.9, np.float32)
    hubness[11] = 0.0
    finder = _finder(hubness)
    catalog = finder.index.picture_vectors()
    query = 0.5 * catalog[:4].sum(axis=0) + 0.1 * catalog[11]  # p11: cosine 0.1, margin 0.2
    query /= np.linalg.norm(query)
    first = _ids(finder.rank(query, Page(2)))
    deep = _ids(finder.rank(query, Page(12)))
    assert deep[:2] == first and deep.index("p11") >= 4
    assert [p for o in range(0, 12, 2) for p in _ids(finder.rank(query, Page(2, offset=o)))] == deep


def test_a_large_catalog_is_sampled_not_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The finder scores boxes against SCORING_SAMPLE pictures: of a million products it reads
    every step-th vector only (all of them are 4.9 GB at 1M × 1280), and still has each
    product's hubness for ranking."""
    monkeypatch.setattr(objects, "SCORING_SAMPLE", 4)
    hubness = np.linspace(0.0, 0.1, 12).astype(np.float32)
    finder = _finder(hubness)
    assert finder.index.sampled == 3 and len(finder._sample) == 4
    np.testing.assert_array_equal(finder._sample_hubness, hubness[::3])
    np.testing.assert_array_equal(finder._product_hubness, hubness)


def test_only_the_shown_products_are_read() -> None:
    finder = _finder(np.zeros(12, np.float32))
    finder.index.records_read = 0
    finder.rank(finder.index.picture_vectors()[0], Page(2))
    assert finder.index.records_read == 2  # the pool of 12 is ranked without its records


def test_filters_and_exclusions_reach_the_pool() -> None:
    categories = ["sofa", "lamp"] * 6
    finder = _finder(np.zeros(12, np.float32), categories)
    query = finder.index.picture_vectors()[0]
    lamps = finder.rank(query, Page(3, "lamp"))
    assert lamps and all(h.product.categories == ("lamp",) for h in lamps)
    assert "p0" not in _ids(finder.rank(query, Page(5, exclude=("p0",))))


def test_a_kind_leads_an_objects_pages_and_a_catch_all_leads_nothing() -> None:
    categories = ["sofa", "bed", "sofa", "bed", "other", "bed"] * 2
    finder = _finder(np.zeros(12, np.float32), categories)
    query = finder.index.picture_vectors()[0]  # p0, a sofa: sofas first by the vote
    plain = _ids(finder.rank(query, Page(12)))
    beds = _ids(finder.rank(query, Page(12), None, "bed"))
    first_beds = [p for p in plain if categories[int(p[1:])] == "bed"]
    assert beds[: len(first_beds)] == first_beds  # in their own order, ahead of the rest
    assert beds[len(first_beds) :] == [p for p in plain if p not in first_beds]
    assert _ids(finder.rank(query, Page(12), None, "other")) == plain
    paged = [p for o in (0, 4, 8) for p in _ids(finder.rank(query, Page(4, offset=o), None, "bed"))]
    assert paged == beds  # a press's pages are the album's ranking, continued


class CutOuts:
    """A region encoder whose cut-outs are given: the box whose left edge is i → vectors[i]."""

    def __init__(self, vectors: dict[int, np.ndarray]) -> None:
        self.vectors = vectors
        self.batches: list[list[Box]] = []

    def cut_out(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        self.batches.append(boxes)
        return np.stack([self.vectors[box.left] for box in boxes])


class Boxes:
    """Regions whose box i is one pixel wide at x = i."""

    def box(self, i: int) -> Box:
        return Box(i, 0, i + 1, 1)


def test_the_first_object_is_the_cut_out_that_matches_a_product_most_clearly() -> None:
    catalog = _catalog()
    blend = catalog[5] + 0.3 * catalog[6]  # mostly p5: cosine 0.958 to it
    cut_outs = {0: catalog[3], 1: blend / np.linalg.norm(blend)}  # box 0 is exactly p3
    plain = _finder(np.zeros(12, np.float32))
    plain.encoder = CutOuts(cut_outs)
    assert plain._clearest_cut_out(None, Boxes(), [0, 1])[0] == 0  # type: ignore[arg-type]
    hubness = np.zeros(12, np.float32)
    hubness[3] = 0.5  # p3 is like every room: 2·1 − 0.5 < 2·0.958
    hubbed = _finder(hubness)
    hubbed.encoder = CutOuts(cut_outs)
    chosen, vector = hubbed._clearest_cut_out(None, Boxes(), [0, 1])  # type: ignore[arg-type]
    assert chosen == 1 and np.array_equal(vector, cut_outs[1])
    assert len(hubbed.encoder.batches) == 1 and len(hubbed.encoder.batches[0]) == 2  # one batch
