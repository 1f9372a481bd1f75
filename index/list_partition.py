"""Where an inverted file's lists are cut: past the directions every product varies along.

k-means cuts along the largest variance. When a few directions hold far more of it than all
the others and every product varies along them (pose, light: the synthetic mixture's 16
shared directions), the lists follow those directions rather than the products: one product's
photos land in many lists, and recall at a fixed nprobe falls (1M mixture: 0.562 at nprobe
16, docs/scale.md). Such directions stand out as a step in the sample's spectrum. Where there
is one, a screen runs k-means with and without them projected out, and the cut whose lists
keep more of the sample's own neighbours within the rule's nprobe is made: where those
directions also decide who is whose neighbour, the plain cut wins. A centroid orthogonal to
them ranks every vector as its projection would, so search needs no transform and the file
stays FAISS's own. Real features show no such step (IKEA Lite0: no eigenvalue above 1.44× the
next among the first 64), so for them nothing changes and nothing more runs.
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import faiss
import numpy as np

from index.choice import SQ8_NPROBE
from index.probe_tuning import QUERIES, K

log = logging.getLogger(__name__)

STEP = 2.0  # an eigenvalue this many times the next ends the shared directions
MAX_SHARED = 64  # looked for among the first this many eigenvalues
MIN_LEFT = 0.25  # of the variance must remain to cut the lists in
SPECTRUM_ROWS = 20_000  # rows of the sample the spectrum is estimated from
CHUNK = 4_096  # rows projected or summed at a time (a (CHUNK, D) temporary)
SCREEN = 4  # the two cuts are compared on 1/SCREEN of the sample, into 1/SCREEN of the lists


def shared_directions(sample: np.ndarray) -> np.ndarray:
    """(R, D) orthonormal rows: the directions above the sample's spectrum step, R = 0 if none."""
    rows = sample[:SPECTRUM_ROWS]  # a uniform draw: the sample comes in random order
    mean = rows.mean(axis=0, dtype=np.float64)
    covariance = np.zeros((rows.shape[1],) * 2)
    for start in range(0, len(rows), CHUNK):  # a float64 copy of the rows was 200 MiB at 1280
        part = rows[start : start + CHUNK].astype(np.float64) - mean
        covariance += part.T @ part
    values, vectors = np.linalg.eigh(covariance / len(rows))
    values, vectors = values[::-1], vectors[:, ::-1]  # largest first
    looked = min(MAX_SHARED, len(values) - 1, len(rows) // 4)
    none = np.zeros((0, sample.shape[1]), np.float32)
    if looked < 1 or values[0] <= 0:
        return none
    ratios = values[:looked] / np.maximum(values[1 : looked + 1], values[0] * 1e-12)
    count = int(np.argmax(ratios)) + 1
    left = values[count:].sum() / values.sum()
    if ratios[count - 1] < STEP or left < MIN_LEFT:
        return none
    return np.ascontiguousarray(vectors[:, :count].T, dtype=np.float32)


@contextmanager
def projected_out(rows: np.ndarray, directions: np.ndarray) -> Iterator[np.ndarray]:
    """`rows` with `directions` projected out, in place, and put back on exit (to float
    rounding, 1e-7): a copy would hold a second 1.25 GiB k-means sample in a 1M × 1280 build."""
    if not len(directions):
        yield rows
        return
    coords = np.empty((len(rows), len(directions)), np.float32)  # (S, R): what is put back
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        coords[start : start + CHUNK] = part @ directions.T
        part -= coords[start : start + CHUNK] @ directions
    try:
        yield rows
    finally:
        for start in range(0, len(rows), CHUNK):
            rows[start : start + CHUNK] += coords[start : start + CHUNK] @ directions


def cut_lists(ivf: faiss.IndexIVF, sample: np.ndarray) -> None:
    """Fill `ivf`'s untrained quantizer with k-means centroids of `sample` (rows in random
    order: its prefixes are the spectrum's and the screen's draws): FAISS's plain cut, or the
    cut past the sample's shared directions where a screen finds it keeps more neighbours."""
    directions = shared_directions(sample)
    if len(directions) and not _past_keeps_more(ivf, sample, directions):
        directions = directions[:0]
    with projected_out(sample, directions) as rows:
        centroids = _kmeans(ivf, rows, ivf.nlist)
    ivf.quantizer.reset()
    ivf.quantizer.add(centroids)
    ivf.quantizer.is_trained = True


def _past_keeps_more(ivf: faiss.IndexIVF, sample: np.ndarray, directions: np.ndarray) -> bool:
    """Both cuts on the first 1/`SCREEN` of the rows into 1/`SCREEN` of the lists, probed as
    widely: two k-means of 1/`SCREEN`² the cost, where running both in full doubled a 1M
    build's longest step. The sample comes in random order (`vector_writer._picks`), so its
    first rows are a uniform draw held in place: a copy of every `SCREEN`th row (with the
    spectrum's float64 copies) lifted a 1M build's peak to 1.64× its index (docs/scale.md,
    eleventh round)."""
    rows = sample[: len(sample) // SCREEN]
    lists, probe = max(1, ivf.nlist // SCREEN), max(1, SQ8_NPROBE // SCREEN)
    plain = _kmeans(ivf, rows, lists)
    with projected_out(rows, directions):
        past = _kmeans(ivf, rows, lists)
    kept = neighbours_kept((plain, past), rows, probe)
    log.info(
        "%d shared directions: a screen's lists keep %.3f of the neighbours cut plainly, "
        "%.3f past them",
        len(directions),
        *kept,
    )
    return kept[1] > kept[0]


def neighbours_kept(cuts: Sequence[np.ndarray], rows: np.ndarray, probe: int) -> list[float]:
    """For each cut's (lists, D) centroids, the share of `QUERIES` rows' `K` nearest rows that
    lie in one of the row's `probe` nearest lists: the recall those lists allow, before any
    codes. The rows' exact neighbours, the costly part, are found once for all the cuts."""
    picked = np.random.default_rng(0).choice(len(rows), min(QUERIES, len(rows)), False)
    queries = rows[picked]
    _, nearest = faiss.knn(queries, rows, K + 1, metric=faiss.METRIC_INNER_PRODUCT)
    neighbours = rows[nearest[:, 1:].ravel()]  # (Q·K, D): each query's K nearest but itself
    return [_kept(centroids, queries, neighbours, probe) for centroids in cuts]


def _kept(centroids: np.ndarray, queries: np.ndarray, neighbours: np.ndarray, probe: int) -> float:
    """Share of each query's neighbours (`neighbours`: K rows a query, in order) whose nearest
    list is among the query's `probe` nearest."""
    lists = faiss.IndexFlatIP(centroids.shape[1])
    lists.add(centroids)
    _, probed = lists.search(queries, min(probe, len(centroids)))
    _, home = lists.search(neighbours, 1)
    home = home.reshape(len(queries), K)
    return float(np.mean([np.isin(home[i], probed[i]).mean() for i in range(len(queries))]))


def _kmeans(ivf: faiss.IndexIVF, rows: np.ndarray, lists: int) -> np.ndarray:
    """(lists, D) centroids of `rows` with `ivf`'s own clustering settings."""
    clustering = faiss.Clustering(ivf.d, lists, ivf.cp)
    clustering.train(rows, faiss.IndexFlat(ivf.d, ivf.quantizer.metric_type))
    return faiss.vector_to_array(clustering.centroids).reshape(lists, ivf.d)
