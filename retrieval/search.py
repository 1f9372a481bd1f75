"""The one entry point the bot and the CLI call: bytes or an image in, ranked products out."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_image
from retrieval.extractor import Extractor
from retrieval.index_store import CatalogIndex, Hit, open_index


@dataclass
class QueryResult:
    """A query's vector (kept for "more" and filters without re-extraction), hits and timings."""

    vector: np.ndarray  # (D,) unit vector
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    no_match: bool = False  # nothing is similar enough: say so, and still show the closest


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
        max_image_bytes: int = DEFAULT_MAX_BYTES,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.extractor = extractor
        self._index = index
        self.index_dir = index_dir
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self._swap = threading.Lock()

    @property
    def index(self) -> CatalogIndex:
        return self._index

    def search_bytes(self, data: bytes, k: int = 5, category: str | None = None) -> QueryResult:
        """Decode, embed and search an uploaded image; raises `ImageError` on bad bytes."""
        timings: dict[str, float] = {}
        with _timed(timings, "decode"):
            image = decode_image(
                data,
                max_bytes=self.max_image_bytes,
                max_pixels=self.max_image_pixels,
                min_side=self.extractor.input_size,
            )
        result = self.search_image(image, k, category)
        result.timings = timings | result.timings
        return result

    def search_image(
        self, image: np.ndarray, k: int = 5, category: str | None = None
    ) -> QueryResult:
        """Embed an (H, W, 3) uint8 image and search the index that was current when it came."""
        index = self._index  # a reload during extraction does not change this query's index
        timings: dict[str, float] = {}
        with _timed(timings, "extract"):
            vector = self.extractor.embed_one(image)
        with _timed(timings, "search"):
            hits = index.search(vector, k, category)
        return QueryResult(vector, hits, timings, index.no_match(hits))

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 5,
        category: str | None = None,
        exclude: tuple[str, ...] = (),
    ) -> list[Hit]:
        """Search from a vector already computed (a cached query or a stored product)."""
        return self._index.search(vector, k, category, exclude)

    def reload(self) -> CatalogIndex:
        """Open `index_dir`'s current release and swap it in; queries in flight keep the old one.

        The old index is left to the garbage collector rather than closed, because a query
        that started before the swap may still be reading it.
        """
        if self.index_dir is None:
            raise ValueError("this service was not given an index directory to reload from")
        with self._swap:
            fresh = open_index(self.index_dir, self.extractor.fingerprint)
            self._index = fresh
        return fresh
