"""Defects found sweeping the index files: small catalogs' region hubness, damaged cached
vectors, a manifest that misdescribes its views."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from index.build import CACHE, BuildOptions, build_index
from index.choice import IndexChoice
from index.pseudo_rooms import PseudoRooms
from index.publish import RELEASES
from index.region_hubness import HUBNESS_K, region_hubness
from index.vector_cache import CacheError, VectorCache
from index.vector_writer import write_from_cache
from retrieval.errors import IndexDamagedError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.feature_map import region_side
from retrieval.index_store import CURRENT, open_index
from retrieval.manifest import MANIFEST
from tests.synthetic import write_shapes_catalog


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_a_picture_in_every_used_room_gets_the_others_hubness_not_minus_one() -> None:
    """Its own regions, masked, once counted as cosine −1: the lowest hubness of all, so it won
    every box of a room photo (CSLS 2·cos − hubness)."""
    rng = np.random.default_rng(0)
    catalog = _unit(rng.normal(size=(4, 8)))  # four pictures: the first two rooms are used
    regions = [_unit(rng.normal(size=(25, 8))) for _ in range(2)]
    scenes = np.zeros((2, 8), np.float32)
    hubness = region_hubness([catalog], np.arange(4), PseudoRooms(regions, [{0, 1}, {0}], scenes))
    np.testing.assert_allclose(hubness[0], hubness[1:].mean(), rtol=1e-6)
    everywhere = PseudoRooms(regions, [{0, 1, 2, 3}] * 2, scenes)  # a catalog of ≤ 3 pictures
    np.testing.assert_array_equal(region_hubness([catalog], np.arange(4), everywhere), 0.0)


def test_a_picture_with_fewer_regions_than_k_outside_its_rooms_averages_only_those() -> None:
    rng = np.random.default_rng(1)
    catalog = _unit(rng.normal(size=(4, 8)))  # four pictures: the first two rooms are used
    few = HUBNESS_K // 4
    regions = [_unit(rng.normal(size=(HUBNESS_K, 8))), _unit(rng.normal(size=(few, 8)))]
    rooms = PseudoRooms(regions, [{0}, {1}], np.zeros((2, 8), np.float32))
    hubness = region_hubness([catalog], np.arange(4), rooms)
    np.testing.assert_allclose(hubness[0], (catalog[0] @ regions[1].T).mean(), rtol=1e-5)


def test_no_picture_of_a_small_catalog_is_given_the_masked_cosine(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """Six pictures: some are pasted into each of the three rooms used."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    build_index(
        catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False, objects=True)
    )
    hubness = open_index(tmp_path / "idx").region_hubness(region_side(tiny_extractor.input_size))
    assert hubness is not None and np.isfinite(hubness).all()
    assert not np.isclose(hubness, -1.0).any()


def _poison_one(cache_dir: Path, value: float) -> str:
    """Overwrite one cached vector with `value` everywhere (a damaged cache); its key."""
    path = next(cache_dir.glob("*.sqlite"))
    with sqlite3.connect(path) as db:
        key, blob = db.execute("SELECT hash, v FROM vectors ORDER BY hash LIMIT 1").fetchone()
        bad = np.full(len(blob) // 4, value, np.float32).tobytes()
        db.execute("UPDATE vectors SET v = ? WHERE hash = ?", (bad, key))
    db.close()
    return key


def test_a_nan_in_the_cache_fails_the_build_in_one_line_and_changes_nothing(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """It once published an index whose no-match threshold was NaN (never "no match") and
    whose poisoned product no search could find."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    index_dir = tmp_path / "idx"
    quiet = BuildOptions(progress=False, scenes=0)
    build_index(catalog, index_dir, tiny_extractor, quiet)
    served = (index_dir / CURRENT).resolve()
    key = _poison_one(index_dir / CACHE, np.nan)
    with pytest.raises(CacheError, match=f"damaged vector.*{key}.*--full") as raised:
        build_index(catalog, index_dir, tiny_extractor, quiet)
    assert "\n" not in str(raised.value)
    assert (index_dir / CURRENT).resolve() == served
    assert len(list((index_dir / RELEASES).iterdir())) == 1
    rebuilt = build_index(
        catalog, index_dir, tiny_extractor, BuildOptions(progress=False, scenes=0, full=True)
    )
    assert np.isfinite(open_index(index_dir).no_match_below) and rebuilt.release != served


def test_an_infinite_cached_vector_is_refused_before_an_inverted_file_trains(
    tmp_path: Path,
) -> None:
    """FAISS's k-means fails on it with a C++ trace, not a line the command line can print."""
    fingerprint = Fingerprint("test", "none", 64, 8)
    rows = _unit(np.random.default_rng(2).normal(size=(400, 8)))
    keys = [f"h{i}" for i in range(len(rows))]
    cache = VectorCache(tmp_path / "cache", fingerprint)
    cache.put_many(dict(zip(keys, rows, strict=True)))
    cache.close()
    _poison_one(tmp_path / "cache", np.inf)
    target = tmp_path / "vectors.faiss"
    with pytest.raises(CacheError, match="NaN or infinite"):
        write_from_cache(
            target, IndexChoice("IVF4,Flat", 2, 0), tmp_path / "cache", fingerprint, keys
        )
    assert not target.exists()


@pytest.mark.parametrize(
    "views",
    [
        {"scenes.count": 2},  # no first vector
        {"scenes.count": 2, "scenes.first_vector": "abc"},
        {"scenes.count": 2, "scenes.first_vector": 10**6},  # past the vectors
        {"scenes.count": 2, "scenes.first_vector": -3},
        {"views.count": 1, "views.first_vector": 0},  # crops, and no whole picture
    ],
    ids=["missing", "text", "past-the-end", "negative", "no-pictures"],
)
def test_a_manifest_that_misdescribes_its_views_is_damaged_when_the_index_opens(
    views: dict[str, object], shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """Scene views and crops follow the whole pictures as the manifest says; a hand-edited
    manifest that says it wrongly is one line at opening, not a KeyError or a count of -3."""
    report = build_index(shapes_catalog, tmp_path, tiny_extractor, BuildOptions(progress=False))
    manifest = report.release / MANIFEST
    edited = json.loads(manifest.read_text())
    edited["extra"] = {**edited["extra"], **views}
    manifest.write_text(json.dumps(edited))
    with pytest.raises(IndexDamagedError, match=r"manifest\.json is damaged"):
        open_index(tmp_path)
