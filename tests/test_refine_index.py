"""A refine index on an HNSW graph (the 1M choice before IVF-SQ8 replaced it; releases built then
still load): HNSW on SQ8 codes, the short list re-ranked by the exact vectors, which the served
process maps from disk instead of holding. The build that chooses IVF: test_ivf_sq8_index.py."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from index.vector_writer import write_index
from retrieval import filtered_search
from retrieval.filtered_search import search_within

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
