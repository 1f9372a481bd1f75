"""A category filter on an approximate index returns k results whenever k exist."""

import faiss
import numpy as np
import pytest

from retrieval import filtered_search
from retrieval.filtered_search import search_within

DIM = 32


def _clustered(n_clusters: int, per_cluster: int, seed: int = 0) -> np.ndarray:
    """(n_clusters · per_cluster, DIM) unit rows in tight, well-separated clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM)).astype(np.float32)
    rows = np.repeat(centres, per_cluster, axis=0)
    rows += 0.05 * rng.standard_normal(rows.shape).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def ivf_with_small_category() -> tuple[faiss.Index, np.ndarray, np.ndarray, np.ndarray]:
    """IVF16 (nprobe 1) over 16 clusters; the 'category' is 7 vectors of the last cluster."""
    vectors = _clustered(16, 64)
    index = faiss.index_factory(DIM, "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    faiss.extract_index_ivf(index).nprobe = 1
    faiss.extract_index_ivf(index).make_direct_map()
    allowed = np.arange(15 * 64, 15 * 64 + 7, dtype=np.int64)
    query = vectors[:1].copy()  # in cluster 0, far from the category
    return index, vectors, allowed, query


def test_plain_selector_search_loses_the_small_category(ivf_with_small_category) -> None:
    """The defect this module exists for: IVF with a selector scans only the query's list."""
    index, _, allowed, query = ivf_with_small_category
    params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=1)
    _, ids = index.search(query, 5, params=params)
    assert (ids[0] >= 0).sum() < 5


@pytest.mark.parametrize("exact_below", [filtered_search.EXACT_BELOW, 0])
def test_small_category_returns_k_in_exact_order(
    ivf_with_small_category, monkeypatch: pytest.MonkeyPatch, exact_below: int
) -> None:
    """Both paths — exact scoring and widening probes — give the true top 5 of the category."""
    monkeypatch.setattr(filtered_search, "EXACT_BELOW", exact_below)
    index, vectors, allowed, query = ivf_with_small_category
    scores, ids = search_within(index, query, 5, allowed)
    truth = allowed[np.argsort(-(vectors[allowed] @ query[0]))[:5]]
    assert ids[0].tolist() == truth.tolist()
    np.testing.assert_allclose(scores[0], vectors[truth] @ query[0], rtol=1e-5)
    assert faiss.extract_index_ivf(index).nprobe == 1  # shared settings left alone


def test_fewer_allowed_than_asked_pads_with_minus_one(ivf_with_small_category) -> None:
    index, _, allowed, query = ivf_with_small_category
    _, ids = search_within(index, query, 10, allowed)
    assert sorted(ids[0][:7].tolist()) == allowed.tolist()
    assert ids[0][7:].tolist() == [-1, -1, -1]


def test_hnsw_widens_ef_search_for_a_far_category(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filtered_search, "EXACT_BELOW", 0)
    vectors = _clustered(32, 64, seed=1)
    index = faiss.index_factory(DIM, "HNSW8,Flat", faiss.METRIC_INNER_PRODUCT)
    index.add(vectors)
    index.hnsw.efSearch = 8
    allowed = np.arange(31 * 64, 31 * 64 + 12, dtype=np.int64)
    _, ids = search_within(index, vectors[:1], 5, allowed)
    assert set(ids[0].tolist()) <= set(allowed.tolist())
    assert (ids[0] >= 0).sum() == 5
    assert index.hnsw.efSearch == 8


def test_no_filter_is_a_plain_search(ivf_with_small_category) -> None:
    index, _, _, query = ivf_with_small_category
    np.testing.assert_array_equal(
        search_within(index, query, 5, None)[1], index.search(query, 5)[1]
    )
