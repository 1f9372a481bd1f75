"""A room photo → the pieces of furniture in it, each searched on its own.

    image ─▶ regions (one forward pass, hundreds of boxes) ─▶ score each box against the catalog
          ─▶ keep the best boxes that do not overlap (NMS) ─▶ index search per box ─▶ label
    image ─▶ detector (chairs, tables, desks) ─▶ its most probable box, cut out and embedded
          by the query network: the first object, where it is sure of it and the photo does
          not read as another kind that a map box shows
    or the map's best `cut_outs` boxes, each cut out and embedded by the query network: the
          one whose products it matches most clearly is the first object
    either cut out of the photo decoded larger, where the caller has its bytes
    the first object's vector: the detector's box cut out alone; the map's mixed with the
          same box pooled from the map; where it leads for showing the photo's kind, its
          pages show that kind first

A box scores high when it matches some product far better than the catalog's hub pictures
would explain (CSLS against the index's region hubness, `index/region_hubness.py`) and better
than the photo as a whole does: a wall or floor patch resembles the whole room and nothing in
particular, so it scores low.

A plain product photo (one object on white, like the catalog's) gets no object step at all.
"""

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import ThreadpoolController

from retrieval.detector import Detector
from retrieval.index_store import CatalogIndex, Hit
from retrieval.regions import Box, RegionEncoder, Regions, cells_of, non_max_suppression
from retrieval.rerank import CATCH_ALL, grouped, led_by
from retrieval.results import Page

log = logging.getLogger(__name__)

Ranking = list[tuple[int, float]]  # (product row, cosine), best first

MAX_OBJECTS = 5
NMS_IOU = 0.3  # boxes overlapping a better one by more than this are the same object
SCORING_DIMS = 128  # boxes are ranked in a PCA space of the catalog: exact search comes after
SCORING_SAMPLE = 20_000  # catalog vectors the PCA and the box scores look at
RERANK_POOL = 50  # nearest products an object's CSLS re-ranking orders (more for deep pages)
LABEL_VOTES = 10  # the label is the category most of this many top products share
TYPE_FIELD = "type"  # a catalog column with a product's own kind (IKEA's "Potted plant"): an
TYPE_VOTES = 3  # object of a catch-all bin is named by it where this many of its 10 share it
WHITE = 230  # a channel value at or above this counts as the catalog's white backdrop
WHITE_BORDER = 0.9  # share of white border pixels that marks a product-on-white photo
MIN_CROP = 8  # a detected box's smallest side, in pixels, when it is cut out
CUT_OUT_WEIGHT = 0.7  # the cut-out's share of object 1's vector, the pooled box's the rest:
# first-object hit@5 0.184 → 0.198 over 7 pseudo-room draws, 0.217 → 0.267 on the shipped one
# (rooms_bench, docs/objects.md sixth pass)
LEAD_SCORE = 0.5  # the detector's box is object 1 only this sure of its class; below, the map's
# cut-out found more: first album as served 0.293 → 0.360 over 7 pseudo-room draws, 0.267 →
# 0.350 on the index's (docs/objects.md, twenty-fourth pass)


@dataclass(frozen=True)
class DetectedObject:
    """One piece of furniture found in a photo, with the products most like it."""

    box: Box  # in the photo's pixels
    score: float  # how clearly the box matches a product (CSLS margin; higher is better)
    label: str  # the category most of its nearest products share
    name: str  # how a shopper reads it: the label, or for a catch-all the type its products share
    vector: np.ndarray  # (D,) unit vector, kept so "more" needs no new forward pass
    hits: list[Hit]  # best first; scores are plain cosines, as a whole-photo search gives
    kind: str = ""  # the kind its pages put first (object 1 led by the photo's); "": none


def looks_like_product_photo(image: np.ndarray) -> bool:
    """One object on white, as catalogs shoot them: its border is almost all white.

    Per channel, not `min(axis=-1)`: a reduction over 3 values a pixel took 0.6 ms a photo,
    and every photo is asked (docs/objects.md, twenty-second pass)."""
    height, width = image.shape[:2]
    band = max(1, min(height, width) // 25)
    strips = (image[:band], image[-band:], image[:, :band], image[:, -band:])
    white = sum(
        np.count_nonzero(np.minimum(np.minimum(s[..., 0], s[..., 1]), s[..., 2]) >= WHITE)
        for s in strips
    )
    return white / sum(s.shape[0] * s.shape[1] for s in strips) >= WHITE_BORDER


class ObjectFinder:
    """Finds and searches the objects of a photo against one open index.

    `hubness`: (P,) per whole picture (indexed crops play no part in rooms: they would match
    boxes as parts of products); None takes the one stored in the index
    (`CatalogIndex.region_hubness`), and an index built without it (or zeros) corrects only
    with the photo itself. `detector`: its most probable chair, table or desk, at LEAD_SCORE
    or above, is the first object, searched by its own forward pass of the cut-out box (a box
    pooled from the map found its product less often: docs/objects.md). `cut_outs`: without
    such a detection, the map's best `cut_outs` boxes are cut out of the photo and embedded
    by the query network too (one batch, `cut_outs` query forwards); the one whose products
    it matches most clearly (2·cos − hubness) becomes the first object; 0 keeps every object
    pooled from the map. `cut_out_weight`: a first object cut out of the map's boxes has a
    vector this much its cut-out and the rest the same box pooled from the map (1: the
    cut-out alone); the detector's box is its cut-out alone. Built once per index; blocking,
    like `SearchService`.
    """

    def __init__(
        self,
        encoder: RegionEncoder,
        index: CatalogIndex,
        hubness: np.ndarray | None = None,
        max_objects: int = MAX_OBJECTS,
        detector: Detector | None = None,
        cut_outs: int = 0,
        cut_out_weight: float = CUT_OUT_WEIGHT,
    ) -> None:
        self.encoder = encoder
        self.index = index
        self.max_objects = max_objects
        self.detector = detector
        self.cut_outs = cut_outs
        self.cut_out_weight = cut_out_weight
        # found once: `threadpool_limits` looks for the loaded libraries on every call, about
        # 1 ms of a room photo's 29 (docs/objects.md, twenty-second pass)
        self._threads = ThreadpoolController()
        pictures = index.pictures
        owners = index.store.product_of_vector[:pictures]  # (P,)
        step = max(1, pictures // SCORING_SAMPLE)
        ids, sample = index.picture_sample(step)
        _, _, basis = np.linalg.svd(sample, full_matrices=False)  # uncentred: keeps q·c
        top = basis[:SCORING_DIMS].T.copy()  # (D, d)
        self._sample = sample @ top  # (S, d)
        self._basis = encoder.scoring_basis(top)  # boxes are projected with it (a head folded in)
        self._sample_owner = owners[ids]
        hubness = index.region_hubness(encoder.side) if hubness is None else hubness
        if hubness is None:  # e.g. an index built at another region side, before an upgrade
            log.warning(
                "the index has no region hubness at %d px: hub pictures will crowd room "
                "photos' objects until `snapfind index build --objects`",
                encoder.side,
            )
            hubness = np.zeros(pictures, np.float32)
        self._sample_hubness = hubness[ids]
        self._product_hubness = np.full(len(index), np.inf, np.float32)
        np.minimum.at(self._product_hubness, owners, hubness)  # (P,) a product's best image

    def find(
        self,
        image: np.ndarray,
        k: int = 5,
        regions: Regions | None = None,
        kind: str = "",
        sharp: Callable[[], np.ndarray] | None = None,
    ) -> list[DetectedObject]:
        """The photo's objects, most prominent first; [] for a plain product photo.
        `regions`: the encoder's regions of `image`, when the caller already has them.
        `kind`: what the photo shows as its whole-photo search reads it (`photo_kind`): the
        first of the map's boxes labelled so leads (a table among chairs, not a chair), and
        keeps that label and shows that kind first where its cut-out reads as another; it
        leads before a detection of another kind too (which stays, pooled as the rest).
        `sharp`: the same photo decoded larger, asked for only when the first object is cut
        out (the detector's box or a map box): it is cut out of that, not out of `image`
        (boxes stay in `image`'s pixels)."""
        if looks_like_product_photo(image):
            return []
        regions = self.encoder.regions(image) if regions is None else regions
        detected = self._detected(image)
        if detected is not None:  # the detection is a candidate too: the map's boxes over it go
            cells = cells_of(detected[1][None], regions.content.shape[:2])
            regions = replace(regions, cells=np.concatenate([regions.cells, cells]))
        with self._threads.limit(limits=1, user_api="blas"):  # oversubscribed beside TensorFlow
            scores, best, typical = self._score(regions.projected(self._basis))
        order = scores.copy()
        order[regions.flat()] = -np.inf  # wall, floor, ceiling: never an object
        lead_at = len(order) - 1 if detected is not None else None  # the detection's box
        if lead_at is not None:
            order[lead_at] = np.inf  # detected furniture first
        chosen = non_max_suppression(regions.cells, order, NMS_IOU, self.max_objects, best)
        chosen = [i for i in chosen if order[i] > -np.inf]
        vectors = dict(zip(chosen, regions.vectors(chosen), strict=True))  # one pooling pass
        pooled: dict[int, tuple[Ranking, list[Hit], str]] = {}  # box → ranking, page, label

        def pooled_of(i: int) -> tuple[Ranking, list[Hit], str]:
            if i not in pooled:
                pooled[i] = self._labelled(vectors[i], k, typical)
            return pooled[i]

        agreeing = None  # the box that leads for showing the photo's kind
        if kind and (detected is None or detected[0] != kind):
            agreeing = next((i for i in chosen if i != lead_at and pooled_of(i)[2] == kind), None)
            if agreeing is not None:  # a detection of another kind stays, pooled as the rest
                chosen.remove(agreeing)
                chosen.insert(0, agreeing)
                lead_at = None
        own = None  # object 1's own forward pass
        if lead_at is not None:
            own = (lead_at, self._lead(detected, image, sharp))
        if own is None and self.cut_outs and chosen:
            source = image if sharp is None else sharp()
            at = replace(regions, size=source.shape[:2])  # the same boxes in its pixels
            i, cut = self._clearest_cut_out(source, at, chosen[: self.cut_outs])
            own = (i, _Lead("", regions.box(i), cut))
            chosen.remove(i)
            chosen.insert(0, i)  # the clearest cut-out is the first object
        if own is not None and lead_at is None:  # the map's box: mixed with itself pooled
            own = (own[0], self._mixed(own[1], vectors[own[0]], typical))
        found = []
        for i in chosen:
            box, vector = regions.box(i), vectors[i]
            if own is not None and i == own[0]:  # its own forward pass
                first = own[1]
                box, vector = first.box, first.vector
                known = first.label or (kind if i == agreeing else "")
                ranking, hits, label = self._labelled(vector, k, first.photo, known)
            else:
                ranking, hits, label = pooled_of(i)
            named = _named(label, hits)
            led = kind if i == agreeing else ""  # its page shows the kind it leads for
            hits = self._page(ranking, Page(k), led) if led else hits[:k]
            found.append(DetectedObject(box, float(scores[i]), label, named, vector, hits, led))
        return found

    def _detected(self, image: np.ndarray) -> tuple[str, np.ndarray] | None:
        """The detector's most probable piece, its class and (4,) box as fractions, where it
        is LEAD_SCORE sure of it: a less sure box was the wrong piece more often than the
        map's first box (twenty-fourth pass). None without a detector."""
        if self.detector is None:
            return None
        found = self.detector.detect(image)
        if not found.labels or found.scores[0] < LEAD_SCORE:
            return None
        return found.labels[0].lower(), found.boxes[0]

    def _lead(
        self,
        detected: tuple[str, np.ndarray],
        image: np.ndarray,
        sharp: Callable[[], np.ndarray] | None,
    ) -> "_Lead":
        """The detected piece cut out of `sharp()` where given (as the map's first box is)
        and searched alone, not mixed with the box pooled: its box is tight, and out of the
        larger decode its cut-out alone found more (first-object hit@5 over 7 pseudo-room
        draws: 0.243 mixed, out of the product's decode; 0.286 mixed, 0.310 alone, out of
        the larger: docs/objects.md, twenty-third pass)."""
        label, fractions = detected
        source = image if sharp is None else sharp()
        vector = self.encoder.cut_out(source, [_pixel_box(fractions, source.shape[:2])])[0]
        return _Lead(label, _pixel_box(fractions, image.shape[:2]), vector)

    def _clearest_cut_out(
        self, image: np.ndarray, regions: Regions, boxes: list[int]
    ) -> tuple[int, np.ndarray]:
        """Of the map's `boxes` (indices into `regions`), the one whose cut-out matches some
        product most clearly (best 2·cos − hubness in its pool), and that cut-out's (D,) vector.

        Cut out at 224 px a chair gets a map of its own; pooled from the 8×8 map it is 1-3
        cells averaged with what is around it. On rooms_bench the first box cut out lifted
        the first object's hit@10 0.233 → 0.333 and MRR 0.110 → 0.151 (8×8 map); the clearer
        of the best two won at 320 px (hit@5 0.250) but lost at 256 (0.150), hence CUT_OUTS 1
        (docs/objects.md, fifth pass)."""
        vectors = self.encoder.cut_out(image, [regions.box(i) for i in boxes])  # (n, D)
        if len(boxes) == 1:
            return boxes[0], vectors[0]
        margins = [self._margins(self._pool(v, Page(1)), None) for v in vectors]
        best = int(np.argmax([m.max() if len(m) else -np.inf for m in margins]))
        return boxes[best], vectors[best]

    def _mixed(self, lead: "_Lead", pooled: np.ndarray, typical: np.ndarray) -> "_Lead":
        """`lead` (a box cut out) with its vector `cut_out_weight` of the cut-out and the rest
        the same box pooled from the map (`pooled`), its album ranked with that rest's share
        of the photo's term (a map box's album takes all of it).

        The cut-out sees the object sharp and alone; the pooled box sees it among what
        surrounds it, which a product photographed in a room shares. Mixed, they put a room
        product in object 1's top 5 more often than the map box's cut-out alone (rooms_bench,
        sixth and twenty-third passes: docs/objects.md); growing the box before cutting it
        out lost instead."""
        share = self.cut_out_weight
        vector = share * lead.vector + (1 - share) * pooled
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)
        return replace(lead, vector=vector, photo=(1 - share) * typical)

    def _pool(self, vector: np.ndarray, page: Page) -> list[tuple[int, float]]:
        """The (product row, cosine) pool an object's ranking re-orders: the same for every
        page within RERANK_POOL."""
        return self.index.nearest(
            vector, min(len(self.index), max(RERANK_POOL, 2 * page.end)), page
        )

    def _margins(self, pool: list[tuple[int, float]], typical: np.ndarray | None) -> np.ndarray:
        """(n,) 2·cos − hubness (− likeness to the photo, when `typical` is given) of `pool`."""
        rows = np.array([row for row, _ in pool], dtype=np.int64)
        margins = 2 * np.array([cosine for _, cosine in pool]) - self._product_hubness[rows]
        return margins if typical is None else margins - typical[rows]

    def rank(
        self, vector: np.ndarray, page: Page, typical: np.ndarray | None = None, kind: str = ""
    ) -> list[Hit]:
        """`page` of the products for an object's (D,) vector: the index's nearest,
        re-ranked by 2·cos − hubness − likeness to the photo (`typical`, (P,); None when the
        photo is gone, as for a press on the object's button: hubness alone needs no photo),
        then grouped by the index's second stage (`rerank.grouped`: the first product's kind
        first, as on a whole-photo page, the margin order kept within each kind); `kind` (object
        1's, chosen for showing the photo's kind: `DetectedObject.kind`) then leads the pool,
        so that object shows that kind even where its cut-out's nearest product is of another
        (a bed's cut-out end read as a sofa). A catch-all kind leads nothing.

        Product records are read only for what is shown. Only the RERANK_POOL nearest are
        re-ranked, those past them follow in the index's order: every page, however deep, is a
        slice of one ranking, so pages follow each other without gaps or repeats (re-ranking a
        deeper pool let a far picture with little hubness jump ahead of the first page's).
        """
        return self._page(self._ranked(vector, page, typical), page, kind)

    def _ranked(self, vector: np.ndarray, page: Page, typical: np.ndarray | None) -> Ranking:
        """The order `rank` pages: the pool by margin, then grouped by kind."""
        pool = self._pool(vector, page)
        if not pool:
            return []
        head = pool[:RERANK_POOL]
        margins = self._margins(head, typical)
        ranked = [head[i] for i in np.argsort(-margins, kind="stable")] + pool[RERANK_POOL:]
        return grouped(ranked, self.index.store.categories_of, self.index.rerank)

    def _labelled(
        self, vector: np.ndarray, k: int, typical: np.ndarray | None, label: str = ""
    ) -> tuple[Ranking, list[Hit], str]:
        """An object's ranking, its first max(`k`, 10) products and its label (`label` where
        already known, else its 10 best products' kind), from one pool search and one read of
        the products."""
        page = Page(max(k, LABEL_VOTES))
        ranking = self._ranked(vector, page, typical)
        hits = self._page(ranking, page)
        return ranking, hits, label or _label(hits)

    def _page(self, ranked: Ranking, page: Page, kind: str = "") -> list[Hit]:
        """`page` of `ranked` with `kind` leading; only the shown products' records are read."""
        if kind not in CATCH_ALL:
            ranked = led_by(ranked, self.index.store.categories_of, kind, RERANK_POOL)
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


@dataclass(frozen=True)
class _Lead:
    """Object 1's box, cut out and embedded by the query network: the detector's (with its
    class) or the map's clearest (label "": its products' category); its pixels, the vector,
    and the photo's term its first album is ranked with (None: none, as a press)."""

    label: str
    box: Box
    vector: np.ndarray  # (D,)
    photo: np.ndarray | None = None  # (P,) the photo's term for its album; None: none


def photo_kind(hits: list[Hit]) -> str:
    """The kind a photo's whole-photo page reads as: its first product's (`kind_of`)."""
    return kind_of(hits[0].product.categories if hits else ())


def kind_of(categories: Sequence[str]) -> str:
    """A product's kind: its first category ("" for none, or for a catch-all bin such as
    IKEA's `other`, which names no kind)."""
    return "" if not categories or categories[0] in CATCH_ALL else categories[0]


def _pixel_box(fractions: np.ndarray, size: tuple[int, int]) -> Box:
    """A detector's (4,) box as fractions (left, top, right, bottom) in the pixels of a photo
    of `size` (height, width), at least MIN_CROP a side and inside it."""
    height, width = size
    x0, y0, x1, y1 = (fractions * [width, height, width, height]).round().astype(int)
    x0, y0 = min(x0, width - MIN_CROP), min(y0, height - MIN_CROP)
    return Box(int(x0), int(y0), int(max(x1, x0 + MIN_CROP)), int(max(y1, y0 + MIN_CROP)))


def _label(hits: list[Hit]) -> str:
    """The category most of the top hits share; ties go to the better-ranked hit's."""
    shared = [hit.product.categories[0] for hit in hits[:LABEL_VOTES] if hit.product.categories]
    return _most_shared(shared)[0] if shared else "object"


def _named(label: str, hits: list[Hit]) -> str:
    """`label` as a shopper reads it: a catch-all bin (IKEA's `other`, half its catalog) says
    nothing on a button, so it gives way to the `type` most of that bin's top hits share
    (at least `TYPE_VOTES` of `LABEL_VOTES`) where the catalog has that column, or else to
    the thing most of those types name (`_head`): 3 of "Parasol", "Parasol, hanging",
    "Parasol with base" read "parasol". Only shown: kinds and filters stay categories."""
    if label not in CATCH_ALL:
        return label
    types = [  # products without a type vote for none ("")
        given.strip() if isinstance(given := hit.product.extra.get(TYPE_FIELD), str) else ""
        for hit in hits[:LABEL_VOTES]
        if hit.product.categories[:1] == (label,)
    ]
    for votes_for in (types, [_head(given) for given in types]):
        best, votes = _most_shared(votes_for)
        if best and votes >= TYPE_VOTES:
            return best[0].lower() + best[1:] if best[1:2].islower() else best  # "TV bench"
    return label


def _head(given: str) -> str:
    """The thing a product's type names, so that near types add up: "Back cushion, outdoor"
    and "Cushion" are both a cushion. "" for a type that counts parts ("2 sections",
    "9-piece set"): a configuration is no name."""
    phrase = re.split(r",| with | for | of ", given, maxsplit=1)[0].split()
    if not phrase or not phrase[-1].isalpha() or given[:1].isdigit():
        return ""
    return phrase[-1] if phrase[-1].isupper() else phrase[-1].lower()


def _most_shared(values: list[str]) -> tuple[str, int]:
    """The value most of `values` share and how many do ("", 0 for none); ties go to the
    first, so to the better-ranked hit's."""
    return Counter(values).most_common(1)[0] if values else ("", 0)
