"""Retrieval quality on real furniture: Lite0 with its packaged ImageNet weights, IKEA catalog.

Goes through the product path (catalog reader → Extractor → build_index → open_index →
search, with the second stage the build writes into the manifest). Leave-one-out: every
product of a real furniture category queries the index with its stored vector, itself
excluded; a hit is relevant when it shares the query's category. `other` and `textile`
(catch-alls) stay in the index as distractors but never query and never count as relevant.
The catalog lives in ../shared, outside the repository; without it the test skips.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.catalog import read_catalog
from retrieval.extractor import Extractor
from retrieval.index_store import CatalogIndex, open_index
from retrieval.results import Page

CATALOG = Path(__file__).parents[1].parent / "shared/data/ikea/catalog.csv"
CATCH_ALL = frozenset({"other", "textile"})
K = 5
# efficientnet-lite0 @ 224, 921 queries: P@1 0.754, P@5 0.618 in similarity order; the second
# stage a build ships (the nearest product's kind first, catch-all bins out) keeps P@1 and lifts
# P@5 to 0.765 (docs/quality.md, eighth pass): issue 13's goal is 0.75
MIN_P_AT_1 = 0.73
MIN_P_AT_5 = 0.75

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CATALOG.is_file(), reason=f"IKEA catalog not found at {CATALOG} (../shared absent)"
    ),
]


@dataclass(frozen=True)
class Scores:
    queries: int
    p_at_1: float
    p_at_k: float


def leave_one_out(index: CatalogIndex, labels: dict[str, frozenset[str]], k: int) -> Scores:
    """Mean precision at 1 and at k over every product with a real furniture category."""
    hits_at_1, hits_at_k = [], []
    for product_id, wanted in labels.items():
        if not wanted:
            continue
        hits = index.search(index.vector_of(product_id), Page(k, exclude=(product_id,)))
        relevant = [bool(wanted & set(hit.product.categories)) for hit in hits]  # (k,)
        hits_at_1.append(relevant[0])
        hits_at_k.append(sum(relevant) / k)
    return Scores(len(hits_at_1), float(np.mean(hits_at_1)), float(np.mean(hits_at_k)))


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory, lite0_extractor: Extractor) -> Scores:
    """Index the catalog once (vectors cached in this test's tmp dir only) and score it."""
    extractor = lite0_extractor
    index_dir = tmp_path_factory.mktemp("ikea-index")
    build_index(CATALOG, index_dir, extractor, BuildOptions(progress=False))
    index = open_index(index_dir, extractor.fingerprint)
    labels = {e.id: frozenset(e.categories) - CATCH_ALL for e in read_catalog(CATALOG)}
    try:
        result = leave_one_out(index, labels, K)
    finally:
        index.close()
    print(f"\nIKEA leave-one-out, Lite0: {result}")
    return result


def test_every_furniture_product_is_a_query(scores: Scores) -> None:
    assert scores.queries > 900  # 921 rows are neither `other` nor `textile`


def test_precision_at_1(scores: Scores) -> None:
    assert scores.p_at_1 >= MIN_P_AT_1


def test_precision_at_5(scores: Scores) -> None:
    assert scores.p_at_k >= MIN_P_AT_5
