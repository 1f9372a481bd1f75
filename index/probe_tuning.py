"""How many inverted lists a query scans, measured on the catalog at build time.

`choose_index` fixes the index kind from size, dimension and memory alone; its `nprobe` (16) is
fitted to catalogs whose photos come in near-alike groups (IKEA replicas: 0.953 recall@5 at 1M).
On vectors without such groups (the benchmark's synthetic mixture, 1M × 1280) the same index
found 0.074 of the true five at nprobe 16 and 0.572 at 1,024 (docs/scale.md, fourth round).
So the writer checks what it wrote, as autofaiss tunes its search settings on the index it
built: a sample of the catalog's own vectors are queries, their exact top-k among all the other
vectors is merged while the chunks are added (no extra pass), and nprobe doubles from the
choice's value until recall@k reaches `TARGET_RECALL`, half the lists, or a doubling that no
longer pays (the codes' own ceiling: 0.960 for SQ8 on the IKEA replicas). The measured recall
goes into the manifest.

A catalog vector as a query is easier than a shopper's photo where the catalog holds
near-copies (its own copies are its neighbours); on the synthetic mixture it is the same draw.
"""

import logging
from dataclasses import dataclass

import faiss
import numpy as np

log = logging.getLogger(__name__)

TARGET_RECALL = 0.95  # recall@5 against exact search: the goal
QUERIES = 200  # catalog vectors used as queries (±0.015 on a recall near 0.95)
K = 5  # results a reply shows
MIN_GAIN = 0.005  # recall a doubling must add to be kept: 5 of the 1,000 neighbours sought


class RunningTopK:
    """Exact top-k ids of fixed queries among rows seen chunk by chunk, with no n × D copy."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries = queries  # (Q, D)
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(queries), k), -1, dtype=np.int64)

    def update(self, start: int, chunk: np.ndarray) -> None:
        """Merge rows `start ..` (chunk: (c, D)) into the running top-k."""
        scores = np.hstack([self.scores, self.queries @ chunk.T])  # (Q, k + c)
        rows = np.broadcast_to(np.arange(start, start + len(chunk)), (len(scores), len(chunk)))
        ids = np.hstack([self.ids, rows])
        k = self.ids.shape[1]
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (Q, k), unordered
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        self.scores = np.take_along_axis(scores, top, axis=1)
        self.ids = np.take_along_axis(ids, top, axis=1)


@dataclass(frozen=True)
class Tuned:
    """The nprobe kept and the recall@k measured at it."""

    nprobe: int
    recall: float


class ProbeCheck:
    """Catalog vectors as queries (their row numbers known) and their exact neighbours."""

    def __init__(self, queries: np.ndarray, query_ids: np.ndarray) -> None:
        self.query_ids = query_ids  # (Q,) row numbers of the queries in the catalog
        self.truth = RunningTopK(np.ascontiguousarray(queries, dtype=np.float32), K + 1)

    @classmethod
    def from_sample(cls, sample: np.ndarray, sample_ids: np.ndarray, seed: int) -> "ProbeCheck":
        """`QUERIES` rows of the training sample (`sample_ids`: their row numbers)."""
        picked = np.random.default_rng([seed, 1]).permutation(len(sample))[:QUERIES]
        return cls(sample[picked], sample_ids[picked])

    def tune(self, index: faiss.Index) -> Tuned:
        """The fewest lists (from the index's nprobe, doubling) reaching `TARGET_RECALL`, set on
        `index`; doubling stops early when it gains less than `MIN_GAIN` (the codes, not the
        lists, then lose the rest). The truth must have seen every row."""
        ivf = faiss.extract_index_ivf(index)
        most = max(ivf.nprobe, ivf.nlist // 2)
        measured = self.recall(index)
        while measured < TARGET_RECALL and ivf.nprobe < most:
            kept = ivf.nprobe
            ivf.nprobe = min(most, kept * 2)
            wider = self.recall(index)
            if wider - measured < MIN_GAIN:
                ivf.nprobe = kept
                break
            measured = wider
        if measured < TARGET_RECALL:
            log.warning(
                "recall@%d of catalog vectors %.3f at nprobe %d of %d lists: below %.2f",
                K,
                measured,
                ivf.nprobe,
                ivf.nlist,
                TARGET_RECALL,
            )
        return Tuned(ivf.nprobe, measured)

    def recall(self, index: faiss.Index) -> float:
        """Mean share of each query's exact K other neighbours that `index` returns."""
        _, found = index.search(self.truth.queries, K + 1)  # (Q, K + 1): itself among them
        shares = [
            len(set(_others(f, own)) & set(_others(t, own))) / K
            for f, t, own in zip(found, self.truth.ids, self.query_ids, strict=True)
        ]
        return float(np.mean(shares))


def _others(ids: np.ndarray, own: int) -> list[int]:
    """The first K ids that are not the query's own row."""
    return [i for i in ids.tolist() if i != own][:K]
