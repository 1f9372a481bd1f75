"""A vector cache holding rows that are not vectors of its dimension (damaged, or written by
something else): they count as missing and are embedded anew, never a crash, never used."""

from pathlib import Path

import numpy as np
import pytest

from index.build import CACHE, BuildOptions, build_index
from index.vector_cache import CacheError, VectorCache
from retrieval.extractor import Extractor, Fingerprint

FINGERPRINT = Fingerprint("b", "w", 64, 8)


@pytest.mark.parametrize(
    "value",
    [b"abc", None, "x" * 32, 42, np.ones(8, np.float64).tobytes()],
    ids=["short-blob", "null", "text-of-the-right-length", "integer", "float64-blob"],
)
def test_a_row_that_is_not_a_vector_counts_as_missing_until_written_again(
    value: object, tmp_path: Path
) -> None:
    cache = VectorCache(tmp_path, FINGERPRINT)
    try:
        cache._db.execute("INSERT INTO vectors VALUES ('a', ?)", (value,))
        assert cache.hashes_among(["a"]) == set()
        assert cache.get_many(["a"]) == {}
        cache.put_many({"a": np.arange(8)})
        assert cache.hashes_among(["a"]) == {"a"}
        np.testing.assert_array_equal(cache.get_many(["a"])["a"], np.arange(8))
    finally:
        cache.close()


def test_a_build_over_a_damaged_cache_row_embeds_that_image_again(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    index_dir, quiet = tmp_path / "idx", BuildOptions(progress=False)
    build_index(shapes_catalog, index_dir, tiny_extractor, quiet)
    [path] = (index_dir / CACHE).glob("*.sqlite")
    cache = VectorCache(index_dir / CACHE, tiny_extractor.without_head().fingerprint)
    try:
        assert cache.path == path
        [(digest, size)] = cache._db.execute("SELECT hash, length(v) FROM vectors LIMIT 1")
        cache._db.execute("UPDATE vectors SET v = ? WHERE hash = ?", ("x" * size, digest))
        cache._db.commit()
    finally:
        cache.close()
    report = build_index(shapes_catalog, index_dir, tiny_extractor, quiet)
    assert report.embedded == 1


def test_a_cache_that_cannot_be_pruned_after_publishing_is_a_warning_not_a_failed_build(
    shapes_catalog: Path,
    tmp_path: Path,
    tiny_extractor: Extractor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The release is live before the cache is pruned: a build that then finds its cache
    read-only (here: its write refused as SQLite refuses it) reports success, and says so."""
    index_dir, quiet = tmp_path / "idx", BuildOptions(progress=False)

    def read_only(self: VectorCache, hashes: set[str]) -> None:
        raise CacheError(f"vector cache {self.path}: attempt to write a readonly database")

    monkeypatch.setattr(VectorCache, "keep_only", read_only)
    report = build_index(shapes_catalog, index_dir, tiny_extractor, quiet)
    assert (index_dir / "current").resolve() == report.release
    assert "not pruned" in caplog.text and "readonly database" in caplog.text
