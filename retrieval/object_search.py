"""`SearchService.search_objects`: a photo searched whole and object by object, one index.

The region network and the `ObjectFinder` are heavy (a second compiled forward pass, a PCA
of the catalog), so they are built on the first photo that needs them, not at start, and the
finder is rebuilt once per served release: a hot reload swaps the catalog it scores against.
A plain product photo never builds either.
"""

import threading
import time

import numpy as np

from retrieval.embedder import Embedder
from retrieval.errors import ConfigError
from retrieval.extractor import Extractor
from retrieval.index_store import CatalogIndex
from retrieval.objects import DetectedObject, ObjectFinder, looks_like_product_photo
from retrieval.regions import RegionEncoder
from retrieval.results import FoundObject, ObjectsResult, QueryResult


class ObjectSearch:
    """The object step of one extractor: its region encoder, and a finder per index."""

    def __init__(self, extractor: Embedder) -> None:
        self.extractor = extractor
        self._lock = threading.Lock()
        self._encoder: RegionEncoder | None = None
        self._finder: ObjectFinder | None = None

    def search(
        self, image: np.ndarray, index: CatalogIndex, whole: QueryResult, k: int
    ) -> ObjectsResult:
        """`whole` (the photo's own result) with the objects of `image` searched in `index`."""
        timings = dict(whole.timings)
        started = time.perf_counter()
        found = [] if looks_like_product_photo(image) else self.finder(index).find(image, k)
        timings["objects"] = time.perf_counter() - started
        return ObjectsResult(whole, [_plain(o) for o in found], timings)

    def finder(self, index: CatalogIndex) -> ObjectFinder:
        """The finder over `index`, built at its first use (thread-safe)."""
        with self._lock:
            if self._encoder is None:
                self._encoder = _region_encoder(self.extractor)
            if self._finder is None or self._finder.index is not index:
                self._finder = ObjectFinder(self._encoder, index)
            return self._finder


def _plain(found: DetectedObject) -> FoundObject:
    return FoundObject(
        found.box.as_tuple(), found.label, found.score, QueryResult(found.vector, found.hits)
    )


def _region_encoder(extractor: Embedder) -> RegionEncoder:
    """The network of the region pass: the served extractor if it is Keras, else the index's
    backbone rebuilt in Keras (an exported runtime has no feature map yet).

    The one place that makes the encoder: `retrieval.regions.region_encoder_for(extractor)`
    replaces this body once it serves runtimes too.
    """
    if isinstance(extractor, Extractor):
        return RegionEncoder(extractor)
    from retrieval.tf_runtime import configure_tensorflow

    built = extractor.fingerprint
    kind = built.weights_id.split(":")[0]
    if kind not in {"none", "imagenet"}:
        raise ConfigError(
            f"object search rebuilds {built.backbone} in Keras, but its weights came from a "
            "file; serve the Keras backbone (no exported runtime) to search objects"
        )
    configure_tensorflow()
    return RegionEncoder(Extractor(built.backbone, kind, built.input_size))
