"""An honest "no good match": below a similarity calibrated on the catalog, say so.

Any photo, a cat's or a clock's, has five nearest products; only their similarity tells a
near match from none. The threshold is set when the index is built, from the catalog itself:
how similar each picture is to its nearest *other* picture. A shopper's photo of a piece of
furniture the catalog sells lands near that range; a photo of something else lands far below.
"""

import numpy as np

MANIFEST_KEY = "no_match_below"
# The 0.1 % quantile of the catalog's nearest-other-picture similarities, no margin: as far from
# the catalog as almost no catalog picture is from its nearest neighbour. With efficientnet-lite0
# on IKEA's five furniture classes it fired on 1 of 246 wild furniture photos and on most
# non-furniture photos (docs/quality.md).
QUANTILE = 0.001
MARGIN = 0.0  # subtracted from that quantile


def nearest_other_similarity(vectors: np.ndarray, pictures: list[str]) -> np.ndarray:
    """(P,) cosine of each distinct picture's (D,) unit vector to its nearest other picture."""
    first = {picture: i for i, picture in reversed(list(enumerate(pictures)))}
    unique = vectors[sorted(first.values())]  # (P, D)
    best = np.full(len(unique), -1.0, dtype=np.float32)
    for start in range(0, len(unique), 1024):  # blocks bound the (B, P) similarity matrix
        block = unique[start : start + 1024] @ unique.T  # (B, P)
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        best[start : start + len(block)] = block.max(axis=1)
    return best


def calibrate(
    vectors: np.ndarray, pictures: list[str], quantile: float = QUANTILE, margin: float = MARGIN
) -> float | None:
    """The similarity below which a query is "no good match"; None for a one-picture catalog."""
    if len(set(pictures)) < 2:
        return None
    nearest = nearest_other_similarity(vectors, pictures)
    return round(float(np.quantile(nearest, quantile)) - margin, 4)


def is_no_match(best_score: float | None, threshold: float | None) -> bool:
    """Whether the best similarity of an answer is below the index's threshold."""
    return threshold is not None and (best_score is None or best_score < threshold)
