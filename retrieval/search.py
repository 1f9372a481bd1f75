"""`SearchService`: the real `Retrieval` (retrieval/query_api.py) the bot and the CLI call.

Extractor + the served index. Every call reads the index once at its start and uses that one
throughout, so a reload while a query runs never mixes two releases in one answer.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from retrieval.decode import is_jpeg, require_query_side
from retrieval.errors import SnapfindError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.index_store import CatalogIndex, ReleaseStamp, open_index, release_stamp
from retrieval.limits import DEFAULT_LIMITS, ImageLimits
from retrieval.model_input import decode_for_model
from retrieval.object_options import CUT_OUT_SOURCE, DEFAULT_OBJECTS, ObjectOptions
from retrieval.object_search import ObjectSearch
from retrieval.results import FIRST_PAGE, CatalogInfo, Hit, ObjectsResult, Page, QueryResult
from retrieval.store_index import StoreIndex


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - started


class SearchService:
    """Extractor + current index; the index can be swapped while queries run.

    Blocking: call it from a worker thread, never from an event loop.
    """

    def __init__(
        self,
        extractor: Extractor,
        index: CatalogIndex,
        index_dir: Path | None = None,
        *,
        limits: ImageLimits = DEFAULT_LIMITS,
        opener: Callable[[Path, Fingerprint], CatalogIndex | StoreIndex] = open_index,
        objects: ObjectOptions = DEFAULT_OBJECTS,
    ) -> None:
        """`opener` opens a release on reload: `open_index`, or a vector store's
        (`retrieval.store_index.store_opener`); `objects`: how room photos' first object is
        found (`Settings.object_options`)."""
        self.extractor = extractor
        self._index = index
        self.index_dir = index_dir
        self.limits = limits
        self._swap = threading.Lock()
        self._open = opener
        self._served: ReleaseStamp | None = release_stamp(index_dir)
        self._objects = ObjectSearch(extractor, objects)  # built at the first room photo

    @property
    def index(self) -> CatalogIndex:
        return self._index

    def decode(self, data: bytes) -> np.ndarray:
        """(H, W, 3) uint8 pixels of an upload, within the image limits and not too small to
        search; raises `ImageError`."""
        return require_query_side(decode_for_model(data, self.extractor.input_size, self.limits))

    def search_bytes(self, data: bytes, page: Page = FIRST_PAGE) -> QueryResult:
        """Decode, embed and search an uploaded image; raises `ImageError` on bad bytes."""
        timings: dict[str, float] = {}
        with _timed(timings, "decode"):
            image = self.decode(data)
        result = self.search_image(image, page)
        result.timings = timings | result.timings
        return result

    def search_image(self, image: np.ndarray, page: Page = FIRST_PAGE) -> QueryResult:
        """Embed an (H, W, 3) uint8 image and search the index that was current when it came."""
        # a reload during extraction does not change this query's index
        return self._search_image(self._index, image, page)

    def search_objects(
        self, image: np.ndarray, k: int = 5, data: bytes | None = None
    ) -> ObjectsResult:
        """The photo searched whole (as `search_image`) and each piece of furniture in it on
        its own, from one index; a plain product photo gets no object step. `data`: the bytes
        `image` was decoded from, when the caller has them: a room's first object is cut out
        of them decoded again, larger (`cut_out_source`: a JPEG's), not out of `image`."""
        index = self._index
        whole = Page(k)
        sharp = None if data is None else self.cut_out_source(data)
        return self._objects.search(
            image, index, k, lambda: self._search_image(index, image, whole), sharp
        )

    def cut_out_source(self, data: bytes) -> Callable[[], np.ndarray] | None:
        """What a room's first object is cut out of, decoded only when asked: a JPEG's `data`
        again at CUT_OUT_SOURCE × the query side (its draft scale keeps that a few ms); None for
        other formats, which decode whole at any side (the inference thread would pay a huge
        PNG's full decode), so they are cut out of the pixels already decoded."""
        if not is_jpeg(data):
            return None
        side = CUT_OUT_SOURCE * self.extractor.input_size
        return lambda: decode_for_model(data, side, self.limits)

    def objects_ready(self) -> bool:
        """Whether photos are searched object by object here; builds the object step if it
        is not built yet (the bot calls it before serving)."""
        return self._objects.finder(self._index) is not None

    def _search_image(self, index: CatalogIndex, image: np.ndarray, page: Page) -> QueryResult:
        timings: dict[str, float] = {}
        with _timed(timings, "extract"):
            vector = self.extractor.embed_one(image)
        with _timed(timings, "search"):
            hits = index.search(vector, page)
        return QueryResult(vector, hits, timings, index.no_match(hits))

    def search_vector(self, vector: np.ndarray, page: Page = FIRST_PAGE) -> list[Hit]:
        """Search from a vector already computed (a cached query)."""
        return self._index.search(vector, page)

    def search_object_vector(
        self, vector: np.ndarray, page: Page = FIRST_PAGE, kind: str = ""
    ) -> list[Hit]:
        """Search from an object's cached vector and kind, ranked as its first album was."""
        return self._objects.rank(vector, self._index, page, kind)

    def similar_to(self, product_id: str, k: int = 5) -> QueryResult | None:
        """The product's stored vector and its `k` nearest other products, from one index."""
        index = self._index
        try:
            vector = index.vector_of(product_id)
        except KeyError:
            return None
        return QueryResult(vector, index.search(vector, Page(k, exclude=(product_id,))))

    def probe(self) -> bool:
        return self._index.answers()

    def describe(self) -> CatalogInfo:
        return self._index.info

    @property
    def reloadable(self) -> bool:
        return self.index_dir is not None

    def reload(self) -> CatalogInfo:
        """Open `index_dir`'s current release and swap it in; queries in flight keep the old one.

        The old index is left to the garbage collector rather than closed, because a query
        that started before the swap may still be reading it.
        """
        if self.index_dir is None:
            raise ValueError("this service was not given an index directory to reload from")
        with self._swap:
            stamp = release_stamp(self.index_dir)
            fresh = self._open(self.index_dir, self.extractor.fingerprint)
            self._index, self._served = fresh, stamp
        return fresh.info

    def reload_if_changed(self) -> CatalogInfo | None:
        """Reload when a release other than the served one is published; a broken one is
        remembered (and raised once), so it is not retried until the next release."""
        stamp = release_stamp(self.index_dir)
        if stamp is None or stamp == self._served:
            return None
        try:
            return self.reload()
        except SnapfindError:
            self._served = stamp
            raise
