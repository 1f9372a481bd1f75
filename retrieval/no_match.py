"""An honest "no good match": below a similarity calibrated on the catalog, say so.

Any photo, a cat's or a clock's, has five nearest products; only their similarity tells a
near match from none. The threshold is set when the index is built, from the catalog itself:
how similar each picture is to its nearest *other* picture. A shopper's photo of a piece of
furniture the catalog sells lands near that range; a photo of something else lands far below.
"""

import numpy as np

from retrieval.vector_chunks import Chunks, matrix_chunks, rows_at

MANIFEST_KEY = "no_match_below"
# The 0.1 % quantile of the catalog's nearest-other-picture similarities, no margin: as far from
# the catalog as almost no catalog picture is from its nearest neighbour. With efficientnet-lite0
# on IKEA's five furniture classes it fired on 1 of 246 wild furniture photos and on most
# non-furniture photos (docs/quality.md).
QUANTILE = 0.001
MARGIN = 0.0  # subtracted from that quantile


SAMPLE = 5_000  # pictures whose nearest other is found: all of them in catalogs up to this size
BLOCK = 1_024  # sampled pictures scored against a chunk at once: (1024, chunk) floats


def nearest_other_similarity(vectors: np.ndarray, pictures: list[str]) -> np.ndarray:
    """(P,) cosine of each distinct picture's (D,) unit vector to its nearest other picture
    (a sample of SAMPLE pictures past that many)."""
    first = {picture: i for i, picture in reversed(list(enumerate(pictures)))}
    unique = vectors[sorted(first.values())]  # (P, D)
    return nearest_other_in_chunks(matrix_chunks(unique), len(unique))


def nearest_other_in_chunks(chunks: Chunks, count: int, seed: int = 0) -> np.ndarray:
    """(S,) cosine of S = min(count, SAMPLE) of the `count` distinct pictures `chunks()` yields
    to their nearest other picture, reading the chunks twice and holding S rows + one chunk.

    Why a sample past SAMPLE: every picture against every other is O(P²·D), hours at a million
    pictures; SAMPLE × P × D is a couple of minutes, and the 0.1 % quantile of 5,000 draws is
    still a fair estimate of the catalog's.
    """
    if count <= SAMPLE:
        picked = np.arange(count)
    else:
        picked = np.sort(np.random.default_rng(seed).choice(count, SAMPLE, replace=False))
    queries = rows_at(chunks, picked)  # (S, D)
    best = np.full(len(picked), -np.inf, dtype=np.float32)
    start = 0
    for chunk in chunks():
        for lo in range(0, len(picked), BLOCK):
            block = queries[lo : lo + BLOCK] @ np.asarray(chunk, dtype=np.float32).T  # (B, c)
            own = picked[lo : lo + BLOCK] - start  # a picture is not its own nearest other
            inside = np.flatnonzero((own >= 0) & (own < len(chunk)))
            block[inside, own[inside]] = -np.inf
            np.maximum(best[lo : lo + BLOCK], block.max(axis=1), out=best[lo : lo + BLOCK])
        start += len(chunk)
    return best


def calibrate(
    vectors: np.ndarray, pictures: list[str], quantile: float = QUANTILE, margin: float = MARGIN
) -> float | None:
    """The similarity below which a query is "no good match"; None for a one-picture catalog."""
    if len(set(pictures)) < 2:
        return None
    return _threshold(nearest_other_similarity(vectors, pictures), quantile, margin)


def calibrate_chunks(chunks: Chunks, count: int) -> float | None:
    """`calibrate` of `count` distinct pictures streamed by `chunks()` (e.g. from the cache)."""
    if count < 2:
        return None
    return _threshold(nearest_other_in_chunks(chunks, count), QUANTILE, MARGIN)


def _threshold(nearest: np.ndarray, quantile: float, margin: float) -> float:
    return round(float(np.quantile(nearest, quantile)) - margin, 4)


def is_no_match(best_score: float | None, threshold: float | None) -> bool:
    """Whether the best similarity of an answer is below the index's threshold."""
    return threshold is not None and (best_score is None or best_score < threshold)
