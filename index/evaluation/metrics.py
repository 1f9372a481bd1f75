"""Retrieval metrics as pure functions of a relevance matrix.

Every metric here reads ``relevant``: a boolean array of shape (queries, ranks) whose row ``q``
says, rank by rank, whether the result shown for query ``q`` is relevant. Rows shorter than the
cut-off (a catalog smaller than k) count the missing ranks as misses, so a metric never rewards
a tiny catalog. How relevance is decided (strict label, any label, same product) is a separate
choice made by the ``*_relevance`` builders below, so each metric is defined exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _cut(relevant: np.ndarray, k: int) -> np.ndarray:
    """(Q, R) bool -> (Q, k) bool: the first k ranks, padded with misses."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rel = np.asarray(relevant, dtype=bool)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (queries, ranks), got shape {rel.shape}")
    if rel.shape[1] >= k:
        return rel[:, :k]
    return np.pad(rel, ((0, 0), (0, k - rel.shape[1])))


def hit_rate(relevant: np.ndarray, k: int) -> float:
    """Top-k accuracy (or recall@k for one target): share of queries with a hit in the top k."""
    rel = _cut(relevant, k)
    if rel.shape[0] == 0:
        return float("nan")
    return float(rel.any(axis=1).mean())


def precision_at(relevant: np.ndarray, k: int) -> float:
    """P@k: the mean share of the top k that is relevant."""
    rel = _cut(relevant, k)
    if rel.shape[0] == 0:
        return float("nan")
    return float(rel.sum(axis=1).mean() / k)


def average_precision_at(relevant: np.ndarray, n_relevant: Sequence[int], k: int) -> np.ndarray:
    """AP@k per query: sum of P@i at each relevant rank i <= k, over min(k, relevant in catalog).

    Dividing by min(k, n_relevant) rather than by the hits found makes a list that finds one
    relevant item at rank 1 and nothing else score below a list that finds five; a query with
    nothing relevant in the catalog scores 0.
    """
    rel = _cut(relevant, k).astype(np.float64)
    n_rel = np.asarray(n_relevant, dtype=np.int64)
    if n_rel.shape != (rel.shape[0],):
        raise ValueError(f"n_relevant needs one count per query, got shape {n_rel.shape}")
    precision_at_rank = np.cumsum(rel, axis=1) / np.arange(1, k + 1)  # (Q, k)
    denominators = np.minimum(n_rel, k)
    sums = (precision_at_rank * rel).sum(axis=1)
    return np.divide(sums, denominators, out=np.zeros_like(sums), where=denominators > 0)


def mean_average_precision_at(relevant: np.ndarray, n_relevant: Sequence[int], k: int) -> float:
    """mAP@k: the mean of AP@k over queries."""
    ap = average_precision_at(relevant, n_relevant, k)
    return float(ap.mean()) if ap.size else float("nan")


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """The original study's macro F1: per true label, F1 of the top-1 label; then their mean.

    A label never predicted right scores 0; a label that is only predicted (no query has it) is
    not averaged, but each such prediction is a miss of the query's true label.
    """
    pairs = list(zip(truth, predicted, strict=True))
    if not pairs:
        return float("nan")
    scores = []
    for label in sorted(set(truth)):
        hits = sum(t == p == label for t, p in pairs)
        wrong = sum(p == label != t for t, p in pairs)  # predicted `label`, truly another
        missed = sum(t == label != p for t, p in pairs)
        scores.append(2 * hits / (2 * hits + wrong + missed))
    return float(np.mean(scores))


def strict_relevance(
    query_primary: Sequence[str], result_primary: Sequence[Sequence[str | None]]
) -> np.ndarray:
    """Relevant when the result's primary label equals the query's (the study's plain metrics)."""
    pairs = zip(query_primary, result_primary, strict=True)
    return _ragged_to_bool([[r is not None and r == q for r in row] for q, row in pairs])


def any_label_relevance(
    query_labels: Sequence[frozenset[str]], result_labels: Sequence[Sequence[frozenset[str]]]
) -> np.ndarray:
    """Relevant when the result shares any label with the query (the study's "modified" metrics)."""
    return _ragged_to_bool(
        [[bool(q & r) for r in row] for q, row in zip(query_labels, result_labels, strict=True)]
    )


def same_item_relevance(
    query_ids: Sequence[str], result_ids: Sequence[Sequence[str]]
) -> np.ndarray:
    """Relevant when the result is the query's own product (product-level recall)."""
    return _ragged_to_bool(
        [[r == q for r in row] for q, row in zip(query_ids, result_ids, strict=True)]
    )


def _ragged_to_bool(rows: list[list[bool]]) -> np.ndarray:
    """Rows of possibly different lengths -> (Q, longest) bool, short rows padded with misses."""
    width = max((len(row) for row in rows), default=0)
    out = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
