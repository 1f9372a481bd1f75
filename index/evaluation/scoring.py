"""One run of the study: search the catalog side with the query side and score the rankings.

The catalog side is written as an index and searched with the product's own call,
`CatalogIndex.search` (index/evaluation/served_index.py): results are ranked by *product*, each
at its best-scoring vector, reordered by the second stage new indexes carry, one slot per
picture, so they are exactly what the bot shows; K augmented copies of one catalog image can
fill one slot, never five.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.evaluation import metrics
from index.evaluation.dataset import LabelledImage
from index.evaluation.served_index import served_index
from retrieval.extractor import Fingerprint
from retrieval.index_store import CatalogIndex
from retrieval.manifest import VECTORS
from retrieval.results import Page

DEPTH = 10  # ranks kept per query: mAP@10 needs ten
METRICS = ("top1", "acc5", "p5", "f1", "macc5", "mp5", "map10", "r1", "r5")
METRIC_TITLES = {
    "top1": "Top-1",
    "acc5": "Acc@5",
    "p5": "P@5",
    "f1": "macro F1",
    "macc5": "mod. Acc@5",
    "mp5": "mod. P@5",
    "map10": "mAP@10",
    "r1": "product R@1",
    "r5": "product R@5",
}
CATEGORY_METRICS = ("top1", "acc5", "p5", "map10")


@dataclass(frozen=True)
class LabelledProduct:
    """A catalog-side product: the union of its catalog images' labels."""

    labels: frozenset[str]
    primary: str | None


@dataclass(frozen=True)
class RunScores:
    metrics: dict[str, float | None]  # None: not measurable here (no product on both sides)
    per_category: dict[str, dict[str, float]]  # category -> CATEGORY_METRICS + "n"
    n_catalog_products: int
    n_catalog_vectors: int
    n_queries: int
    index_bytes: int


def catalog_products(images: Sequence[LabelledImage]) -> dict[str, LabelledProduct]:
    """Products of the catalog side; a product's primary label is its first image's."""
    labels: dict[str, set[str]] = {}
    primary: dict[str, str | None] = {}
    for image in images:
        labels.setdefault(image.product_id, set()).update(image.labels)
        if primary.get(image.product_id) is None:
            primary[image.product_id] = image.primary
    return {pid: LabelledProduct(frozenset(labels[pid]), primary[pid]) for pid in labels}


def rank_products(index: CatalogIndex, queries: np.ndarray, depth: int = DEPTH) -> list[list[str]]:
    """(Q, D) queries -> per query, up to ``depth`` product ids, best first, as the bot ranks
    them: `CatalogIndex.search` with the manifest's second stage and one slot per picture."""
    rows = np.ascontiguousarray(queries, dtype=np.float32)  # (Q, D)
    return [[hit.product.id for hit in index.search(row, Page(depth))] for row in rows]


def score_run(
    queries: Sequence[LabelledImage],
    ranked: Sequence[Sequence[str]],
    products: dict[str, LabelledProduct],
) -> dict[str, float | None]:
    """The study's metrics for one run (see ``metrics`` for definitions)."""
    strict = _strict(queries, ranked, products)
    any_label = metrics.any_label_relevance(
        [q.label_set for q in queries], [[products[p].labels for p in row] for row in ranked]
    )
    n_relevant = _relevant_counts(queries, products)
    scores: dict[str, float | None] = {
        "top1": metrics.hit_rate(strict, 1),
        "acc5": metrics.hit_rate(strict, 5),
        "p5": metrics.precision_at(strict, 5),
        "f1": metrics.macro_f1(
            [q.primary or "" for q in queries],
            [products[row[0]].primary or "" if row else "" for row in ranked],
        ),
        "macc5": metrics.hit_rate(any_label, 5),
        "mp5": metrics.precision_at(any_label, 5),
        "map10": metrics.mean_average_precision_at(strict, n_relevant, DEPTH),
        "r1": None,
        "r5": None,
    }
    eligible = [i for i, q in enumerate(queries) if q.product_id in products]
    if eligible:
        same = metrics.same_item_relevance(
            [queries[i].product_id for i in eligible], [ranked[i] for i in eligible]
        )
        scores["r1"] = metrics.hit_rate(same, 1)
        scores["r5"] = metrics.hit_rate(same, 5)
    return scores


def score_categories(
    queries: Sequence[LabelledImage],
    ranked: Sequence[Sequence[str]],
    products: dict[str, LabelledProduct],
) -> dict[str, dict[str, float]]:
    """CATEGORY_METRICS per query primary label, with the query count ``n``."""
    by_label: dict[str, list[int]] = {}
    for i, query in enumerate(queries):
        if query.primary is not None:
            by_label.setdefault(query.primary, []).append(i)
    out: dict[str, dict[str, float]] = {}
    for label in sorted(by_label):
        members = by_label[label]
        sub = score_run([queries[i] for i in members], [ranked[i] for i in members], products)
        out[label] = {"n": float(len(members))} | {m: float(sub[m]) for m in CATEGORY_METRICS}
    return out


def run_once(
    rows: Sequence[LabelledImage],
    catalog_vectors: np.ndarray,
    queries: Sequence[LabelledImage],
    query_vectors: np.ndarray,
    fingerprint: Fingerprint | None = None,
) -> RunScores:
    """Index the catalog side ((V, D) vectors, row i an image or augmented copy of `rows[i]`)
    as the product does, search it with every query, score."""
    products = catalog_products(rows)
    with served_index(rows, catalog_vectors, fingerprint) as index:
        ranked = rank_products(index, query_vectors)
        index_bytes = (index.release / VECTORS).stat().st_size
    return RunScores(
        metrics=score_run(queries, ranked, products),
        per_category=score_categories(queries, ranked, products),
        n_catalog_products=len(products),
        n_catalog_vectors=len(rows),
        n_queries=len(queries),
        index_bytes=index_bytes,
    )


def _strict(
    queries: Sequence[LabelledImage],
    ranked: Sequence[Sequence[str]],
    products: dict[str, LabelledProduct],
) -> np.ndarray:
    return metrics.strict_relevance(
        [q.primary or "" for q in queries], [[products[p].primary for p in row] for row in ranked]
    )


def _relevant_counts(
    queries: Sequence[LabelledImage], products: dict[str, LabelledProduct]
) -> list[int]:
    """Per query: catalog products whose primary label is the query's (mAP's denominator)."""
    per_label: dict[str | None, int] = {}
    for product in products.values():
        per_label[product.primary] = per_label.get(product.primary, 0) + 1
    return [per_label.get(q.primary, 0) if q.primary is not None else 0 for q in queries]
