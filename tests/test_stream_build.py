"""A streamed build: vectors go from the network to the cache, and from the cache to the index
and the no-match calibration in chunks; nothing holds the whole catalog's vectors."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import retrieval.no_match as no_match
import retrieval.vector_chunks as vector_chunks
from index.build import CACHE, BuildOptions, build_index
from index.embedding import EmbedOptions, ImageJob, cache_missing
from index.vector_cache import VectorCache
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.no_match import MANIFEST_KEY, calibrate, nearest_other_in_chunks
from retrieval.vector_chunks import matrix_chunks

QUIET = EmbedOptions(progress=False)


def unit_rows(count: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def exact_nearest_other(vectors: np.ndarray) -> np.ndarray:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.max(axis=1)


def test_chunked_nearest_other_is_exact_across_chunk_and_block_edges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vector_chunks, "CHUNK", 7)  # pictures split over many small chunks
    monkeypatch.setattr(no_match, "BLOCK", 3)
    vectors = unit_rows(40, 6)
    found = nearest_other_in_chunks(matrix_chunks(vectors), len(vectors))
    np.testing.assert_allclose(found, exact_nearest_other(vectors), rtol=1e-6)


def test_past_the_sample_size_each_figure_is_a_sampled_pictures_exact_nearest_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vector_chunks, "CHUNK", 16)
    monkeypatch.setattr(no_match, "SAMPLE", 10)
    vectors = unit_rows(100, 5, seed=1)
    exact = exact_nearest_other(vectors)
    found = nearest_other_in_chunks(matrix_chunks(vectors), len(vectors))
    assert found.shape == (10,)
    # each figure is some picture's true nearest-other cosine, never itself (1.0)
    assert all(np.isclose(exact, value, rtol=1e-6).any() for value in found)
    assert found.max() < 0.999


def test_cache_missing_puts_vectors_in_the_cache_and_returns_only_keys(
    tmp_path: Path, tiny_extractor: Extractor, shapes_catalog: Path
) -> None:
    images = sorted((shapes_catalog / "shop").rglob("*.jpg"))[:3]
    jobs = [ImageJob(f"k{i}", str(p), lambda p=p: _pixels(p)) for i, p in enumerate(images)]
    jobs.append(ImageJob("broken", "nowhere.jpg", _unreadable))
    cache = VectorCache(tmp_path / "cache", tiny_extractor.fingerprint)
    try:
        done = cache_missing(tiny_extractor, jobs, cache, QUIET)
        assert done.keys == {"k0", "k1", "k2"} and not hasattr(done, "vectors")
        assert done.stats.extracted == 3 and [s for s, _ in done.unreadable] == ["nowhere.jpg"]
        assert set(cache.get_many(["k0", "k1", "k2"])) == {"k0", "k1", "k2"}
        again = cache_missing(tiny_extractor, jobs[:3], cache, QUIET)
        assert (again.stats.cached, again.stats.extracted) == (3, 0)
    finally:
        cache.close()


def test_the_built_threshold_equals_the_in_memory_calibration(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    build_index(shapes_catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False))
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    with sqlite3.connect(index.release / "products.sqlite") as db:
        pictures = [h for (h,) in db.execute("SELECT content_hash FROM images ORDER BY vector_id")]
    db.close()
    expected = calibrate(index.picture_vectors(), pictures)
    assert expected is not None
    assert index.manifest.extra[MANIFEST_KEY] == pytest.approx(expected, abs=1e-4)
    assert (tmp_path / "idx" / CACHE).is_dir()


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _unreadable() -> np.ndarray:
    raise OSError(2, "No such file or directory")
