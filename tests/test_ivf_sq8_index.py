"""The index past the exact limit: an inverted file over SQ8 codes of residuals, with or without
the exact re-rank (`IVF{nlist},SQ8[,RFlat]`): settings kept in the file, k results under a
category filter, and a build that serves it."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from index import choice
from index.build import BuildOptions, build_index
from index.vector_writer import KMEANS_ITERATIONS, new_index, write_index
from retrieval import filtered_search
from retrieval.extractor import Extractor
from retrieval.filtered_search import search_within
from retrieval.index_store import open_index
from retrieval.results import Page
from tests.synthetic import write_shapes_catalog

KEYS = ("IVF16,SQ8", "IVF16,SQ8,RFlat")
FLAGS = {KEYS[0]: 0, KEYS[1]: faiss.IO_FLAG_MMAP_IFC}  # as CatalogIndex reads them


def clustered(n_clusters: int = 16, per_cluster: int = 64, dim: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = np.repeat(rng.standard_normal((n_clusters, dim)), per_cluster, axis=0)
    rows += 0.05 * rng.standard_normal(rows.shape)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def written(tmp_path: Path, key: str, vectors: np.ndarray, params: str) -> faiss.Index:
    path = tmp_path / "vectors.faiss"
    write_index(path, key, len(vectors), lambda: [vectors[:500], vectors[500:]], params)
    return faiss.read_index(str(path), FLAGS[key])


def test_k_means_runs_the_writers_iterations() -> None:
    index = new_index(32, KEYS[0])
    assert faiss.extract_index_ivf(index).cp.niter == KMEANS_ITERATIONS != 25  # faiss's default


def test_the_file_keeps_nprobe_and_the_re_rank(tmp_path: Path) -> None:
    vectors = clustered()
    index = written(tmp_path, KEYS[1], vectors, "nprobe=2,k_factor_rf=4")
    assert isinstance(index, faiss.IndexRefine) and index.k_factor == 4
    assert faiss.extract_index_ivf(index).nprobe == 2
    np.testing.assert_array_equal(index.reconstruct(5), vectors[5])  # exact, not SQ8
    scores, ids = index.search(vectors[:1], 5)
    np.testing.assert_allclose(scores[0], vectors[ids[0]] @ vectors[0], rtol=1e-6)


@pytest.mark.parametrize("key", KEYS)
def test_an_unfiltered_search_finds_the_query_cluster(tmp_path: Path, key: str) -> None:
    vectors = clustered()
    index = written(tmp_path, key, vectors, "nprobe=1")
    _, ids = index.search(vectors[70:71], 5)  # cluster 1
    assert set(ids[0].tolist()) <= set(range(64, 128))


@pytest.mark.parametrize("exact_below", [filtered_search.EXACT_BELOW, 0])
@pytest.mark.parametrize("key", KEYS)
def test_a_far_category_returns_k_in_its_best_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, exact_below: int
) -> None:
    """nprobe 1 only scans the query's list; 7 allowed vectors sit in the last cluster's."""
    monkeypatch.setattr(filtered_search, "EXACT_BELOW", exact_below)
    vectors = clustered()
    index = written(
        tmp_path, key, vectors, "nprobe=1,k_factor_rf=2" if "RFlat" in key else "nprobe=1"
    )
    faiss.extract_index_ivf(index).make_direct_map()  # as CatalogIndex does
    allowed = np.arange(15 * 64, 15 * 64 + 7, dtype=np.int64)
    scores, ids = search_within(index, vectors[:1], 5, allowed)
    assert (ids[0] >= 0).sum() == 5 and set(ids[0].tolist()) <= set(allowed.tolist())
    assert list(scores[0]) == sorted(scores[0], reverse=True)
    truth = allowed[np.argsort(-(vectors[allowed] @ vectors[0]))[:5]]
    if "RFlat" in key:  # exact scores: exact order
        assert ids[0].tolist() == truth.tolist()
    else:  # SQ8 scores: the same five, each within a code's error of its exact score
        assert set(ids[0].tolist()) == set(truth.tolist())
        np.testing.assert_allclose(scores[0], vectors[ids[0]] @ vectors[0], atol=0.02)


@pytest.mark.parametrize(
    ("budget", "key"), [(20_000, "IVF1,SQ6"), (40_000, "IVF1,SQ8"), (400_000, "IVF1,SQ8,RFlat")]
)
def test_a_build_past_the_exact_limit_serves_the_ivf_index(
    tmp_path: Path,
    tiny_extractor: Extractor,
    monkeypatch: pytest.MonkeyPatch,
    budget: int,
    key: str,
) -> None:
    """12 images stand in for a million: with the exact vectors in the budget they re-rank;
    short of SQ8's bytes, coarser codes serve the same calls."""
    monkeypatch.setattr(choice, "EXACT_FLOATS", 0)
    monkeypatch.setattr(choice, "MIN_LISTS", 0)
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=4)
    options = BuildOptions(progress=False, ram_budget_bytes=budget)
    report = build_index(catalog, tmp_path / "idx", tiny_extractor, options)
    assert report.index_key == key
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    query = index.vector_of("shop/circles/circles-2")
    hits = index.search(query, Page(3))
    assert hits[0].product.id == "shop/circles/circles-2" and hits[0].score > 0.99
    in_squares = index.search(query, Page(4, "squares"))
    assert len(in_squares) == 4 and all("squares" in h.product.categories for h in in_squares)


def test_reserved_lists_hold_exactly_the_rows_added(tmp_path: Path) -> None:
    """The writer sizes every list before adding (no doubling); the lists then hold each row
    once, in the list its centroid gives, with nothing left over from the reservation."""
    vectors = clustered()
    index = written(tmp_path, KEYS[1], vectors, "nprobe=16,k_factor_rf=8")
    ivf = faiss.extract_index_ivf(index)
    _, assigned = ivf.quantizer.search(vectors, 1)
    sizes = [ivf.invlists.list_size(i) for i in range(ivf.nlist)]
    assert sizes == np.bincount(assigned[:, 0], minlength=ivf.nlist).tolist()
    ids = [faiss.rev_swig_ptr(ivf.invlists.get_ids(i), sizes[i]) for i in range(ivf.nlist)]
    assert sorted(np.concatenate(ids).tolist()) == list(range(len(vectors)))
