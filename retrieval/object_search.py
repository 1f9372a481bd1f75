"""`SearchService.search_objects`: a photo searched whole and object by object, one index.

The region network and the `ObjectFinder` are heavy (a second compiled forward pass, a PCA
of the catalog), so they are built on the first photo that needs them, not at start, and the
finder is rebuilt once per served release: a hot reload swaps the catalog it scores against.
A plain product photo never builds either, and a photo the index's room probe calls one piece
(retrieval/room_probe.py) stops after the region pass, with its whole-photo album. Where the
object step cannot run (a runtime exported before its feature-map model existed, served without
TensorFlow; an index built without `--objects`, which has no room references), photos are
searched whole, as before object search, and the log says why once. A release served from a
vector store finds objects too (`retrieval.store_index`).
"""

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from retrieval.detector import Detector
from retrieval.embedder import Embedder
from retrieval.errors import ConfigError, RuntimeModelError
from retrieval.index_store import CatalogIndex
from retrieval.object_options import DEFAULT_OBJECTS, ObjectOptions
from retrieval.objects import (
    DetectedObject,
    ObjectFinder,
    kind_of,
    looks_like_product_photo,
    photo_kind,
)
from retrieval.regions import RegionEncoder, region_encoder_for
from retrieval.results import FoundObject, Hit, ObjectsResult, Page, QueryResult
from retrieval.room_probe import RoomProbe

log = logging.getLogger(__name__)


class ObjectSearch:
    """The object step of one extractor: its region encoder, and a finder per index, finding
    the first object as `options` say (the shipped detector's box, else the map's best boxes
    cut out: `retrieval.object_options`)."""

    def __init__(self, extractor: Embedder, options: ObjectOptions = DEFAULT_OBJECTS) -> None:
        self.extractor = extractor
        self.options = options
        self._detector: Detector | None = None
        self._lock = threading.Lock()
        self._encoder: RegionEncoder | None = None
        self._served: CatalogIndex | None = None  # the index the finder and probe are of
        self._finder: ObjectFinder | None = None
        self._probe: RoomProbe | None = None
        self._unavailable = False  # the object step cannot run here: said once, not retried

    def search(
        self,
        image: np.ndarray,
        index: CatalogIndex,
        k: int,
        search_whole: Callable[[], QueryResult],
        sharp: Callable[[], np.ndarray] | None = None,
    ) -> ObjectsResult:
        """The photo searched whole and, if it shows a room, object by object in `index`. A
        plain product photo, or one where the object step cannot run, is searched whole by
        `search_whole` (the query forward); any other photo takes its whole-photo vector from
        the region pass's own map (its mean, as the query's pooling is), so it costs one
        forward, not two; a photo of one piece (the index's room probe) stops there.
        `sharp`: the photo decoded larger, for the first object's cut-out (`ObjectFinder.find`)."""
        prepared = None if looks_like_product_photo(image) else self._prepared(index)
        if prepared is None:
            whole = search_whole()
            return ObjectsResult(whole, [], whole.timings | {"objects": 0.0})
        finder, probe = prepared
        started = time.perf_counter()
        regions = finder.encoder.regions(image)
        timings = {"extract": time.perf_counter() - started}
        whole = _searched(regions.whole, index, k, timings)
        if not probe.shows_room(regions.scene):
            return ObjectsResult(whole, [], timings | {"objects": 0.0})
        started = time.perf_counter()
        found = finder.find(image, k, regions, room_kind(regions.whole, index, whole), sharp)
        timings["objects"] = time.perf_counter() - started
        return ObjectsResult(whole, [_plain(o) for o in found], timings)

    def rank(self, vector: np.ndarray, index: CatalogIndex, page: Page, kind: str) -> list[Hit]:
        """A page of an object's products from its cached vector, re-ranked against the hub
        pictures and led by its `kind` as its first album was (that album also used the photo,
        gone by now); the plain search where the object step cannot run."""
        finder = self.finder(index)
        if finder is None:
            return index.search(vector, page)
        return finder.rank(vector, page, None, kind)

    def finder(self, index: CatalogIndex) -> ObjectFinder | None:
        """The finder over `index`, built at its first use (thread-safe); None where the object
        step cannot run here, or the index has no room references."""
        prepared = self._prepared(index)
        return None if prepared is None else prepared[0]

    def _prepared(self, index: CatalogIndex) -> tuple[ObjectFinder, RoomProbe] | None:
        """The finder over `index` and its room probe, built at their first use; None where
        the object step cannot run here or the index has no room references."""
        with self._lock:
            if self._unavailable:
                return None
            try:
                if self._encoder is None:
                    self._encoder = region_encoder_for(self.extractor)
                    self._detector = Detector(self.options.threads) if self.options.detect else None
                if self._served is not index:  # a new release: its finder and probe
                    self._served, self._probe = index, None
                    self._finder = ObjectFinder(
                        self._encoder,
                        index,
                        detector=self._detector,
                        cut_outs=self.options.cut_outs,
                    )
                    self._probe = index.room_probe(self._encoder.side)
                    if self._probe is None:
                        log.warning(
                            "the index has no room references at %d px: photos are searched "
                            "whole until `snapfind index build --objects`",
                            self._encoder.side,
                        )
            # an export without its feature-map model and no TensorFlow, or a vector store
            # that holds none of the release's pictures
            except (ImportError, RuntimeModelError, ConfigError) as error:
                log.warning("object search is off (%s); photos are searched whole", error)
                self._unavailable = True
                return None
            if self._finder is None or self._probe is None:
                return None
            return self._finder, self._probe


def _searched(
    vector: np.ndarray, index: CatalogIndex, k: int, timings: dict[str, float]
) -> QueryResult:
    """The whole photo's page for a vector the region pass gave, as `search_image` pages it."""
    started = time.perf_counter()
    hits = index.search(vector, Page(k))
    timings["search"] = time.perf_counter() - started
    return QueryResult(vector, hits, dict(timings), index.no_match(hits))


def room_kind(vector: np.ndarray, index: CatalogIndex, whole: QueryResult) -> str:
    """The room photo's own kind, which picks its first object: that of the product nearest
    it among whole pictures (the first of such a page, which the second stage keeps first),
    read without a product record. Scene views (a table among chairs) read a dining room as
    a table, and its first album then shows tables the room lacks (rooms_bench: one room of
    60, docs/objects.md); the whole-photo album itself keeps them."""
    if index.scene_views is None:
        return photo_kind(whole.hits)
    nearest = index.nearest(vector, 1)
    return kind_of(index.store.categories_of(nearest[0][0])) if nearest else ""


def _plain(found: DetectedObject) -> FoundObject:
    result = QueryResult(found.vector, found.hits)
    return FoundObject(found.box.as_tuple(), found.name, found.score, result, found.kind)
