"""The index past the raw-vector budget: HNSW on SQ8 codes, the short list re-ranked by the
exact vectors, which the served process maps from disk instead of holding."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from index import choice
from index.build import BuildOptions, build_index
from index.vector_writer import write_index
from retrieval import filtered_search
from retrieval.extractor import Extractor
from retrieval.filtered_search import search_within
from retrieval.index_store import open_index
from tests.synthetic import write_shapes_catalog

KEY, PARAMS = "HNSW32,SQ8,RFlat", "efSearch=16,k_factor_rf=4"


def clustered(n_clusters: int, per_cluster: int, dim: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = np.repeat(rng.standard_normal((n_clusters, dim)), per_cluster, axis=0)
    rows += 0.05 * rng.standard_normal(rows.shape)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_refine_file_keeps_its_settings_and_maps_the_exact_vectors(tmp_path: Path) -> None:
    vectors = clustered(16, 64)
    path = tmp_path / "vectors.faiss"
    write_index(path, KEY, len(vectors), lambda: [vectors], PARAMS)
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)  # keep: it owns the C++ index
    assert isinstance(index, faiss.IndexRefine) and index.k_factor == 4
    assert faiss.downcast_index(index.base_index).hnsw.efSearch == 16
    np.testing.assert_array_equal(index.reconstruct(5), vectors[5])  # exact, not SQ8
    scores, ids = index.search(vectors[:1], 5)
    np.testing.assert_allclose(scores[0], vectors[ids[0]] @ vectors[0], rtol=1e-6)


@pytest.mark.parametrize("exact_below", [filtered_search.EXACT_BELOW, 0])
def test_a_filter_on_a_refine_index_returns_k_in_exact_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exact_below: int
) -> None:
    monkeypatch.setattr(filtered_search, "EXACT_BELOW", exact_below)
    vectors = clustered(16, 64)
    path = tmp_path / "vectors.faiss"
    write_index(path, KEY, len(vectors), lambda: [vectors], PARAMS)
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    allowed = np.arange(15 * 64, 15 * 64 + 7, dtype=np.int64)  # far from the query
    _, ids = search_within(index, vectors[:1], 5, allowed)
    truth = allowed[np.argsort(-(vectors[allowed] @ vectors[0]))[:5]]
    assert ids[0].tolist() == truth.tolist()


def test_a_build_past_the_raw_budget_serves_the_refine_index(
    tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choice, "EXACT_FLOATS", 0)  # a 12-image catalog stands in for 1M
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=4)
    budget = 40_000  # SQ8 codes + graph of 12 × 1280 fit, raw floats (77 kB) do not
    report = build_index(
        catalog,
        tmp_path / "idx",
        tiny_extractor,
        BuildOptions(progress=False, ram_budget_bytes=budget),
    )
    assert report.index_key == KEY
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    query = index.vector_of("shop/circles/circles-2")
    hits = index.search(query, k=3)
    assert hits[0].product.id == "shop/circles/circles-2" and hits[0].score > 0.999
    in_squares = index.search(query, k=4, category="squares")
    assert len(in_squares) == 4 and all("squares" in h.product.categories for h in in_squares)
