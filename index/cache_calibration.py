"""The "no good match" threshold of a build, calibrated from the vector cache in chunks.

The build no longer holds its vectors (they go from the network to the cache): the catalog's
distinct pictures are streamed from the cache, as the index writer streams them, and
`retrieval.no_match.calibrate_chunks` scores a sample of them against all in blocks.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.vector_cache import VectorCache
from index.vector_writer import cached_chunks
from retrieval.extractor import Fingerprint
from retrieval.no_match import MANIFEST_KEY, calibrate_chunks


def no_match_from_cache(
    cache_dir: Path,
    fingerprint: Fingerprint,
    pictures: list[str],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, float]:
    """The manifest entry of the threshold for `pictures` (content hashes, repeats allowed),
    their vectors as indexed (`transform`: the tuned head, if any); empty when there is no
    threshold (one distinct picture)."""
    distinct = list(dict.fromkeys(pictures))
    cache = VectorCache(cache_dir, fingerprint)
    try:
        threshold = calibrate_chunks(
            cached_chunks(cache.get_many, distinct, transform), len(distinct)
        )
    finally:
        cache.close()
    return {} if threshold is None else {MANIFEST_KEY: threshold}
