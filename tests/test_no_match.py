"""The "no good match" threshold: calibrated from the catalog, flagged on the result."""

import json
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.no_match import calibrate, is_no_match, nearest_other_similarity
from retrieval.rerank import RerankParams
from retrieval.results import Page
from retrieval.search import SearchService


def unit(rows: list[list[float]]) -> np.ndarray:
    matrix = np.array(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_nearest_other_picture_ignores_itself_and_its_copies() -> None:
    vectors = unit([[1, 0], [1, 0], [1, 0.1], [0, 1]])
    nearest = nearest_other_similarity(vectors, ["a", "a", "b", "c"])
    assert nearest.shape == (3,)  # one per distinct picture
    assert nearest[0] == pytest.approx(nearest[1]) and nearest[0] > 0.99
    assert nearest[2] == pytest.approx(float(vectors[2] @ vectors[3]))


def test_threshold_is_a_low_quantile_and_absent_for_one_picture() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(50, 8)).tolist())
    nearest = nearest_other_similarity(vectors, [str(i) for i in range(50)])
    threshold = calibrate(vectors, [str(i) for i in range(50)], quantile=0.0)
    assert threshold == pytest.approx(nearest.min(), abs=1e-4)
    assert calibrate(vectors[:2], ["same", "same"]) is None


def test_flag() -> None:
    assert is_no_match(0.2, 0.4) and not is_no_match(0.5, 0.4)
    assert not is_no_match(0.1, None) and is_no_match(None, 0.4)


def test_build_stores_the_threshold_and_results_carry_the_flag(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    build_index(shapes_catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False))
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    assert index.no_match_below is not None
    service = SearchService(tiny_extractor, index)
    own = (shapes_catalog / "shop" / "squares" / "squares-1.jpg").read_bytes()
    assert service.search_bytes(own).no_match is False
    flagged = service.search_vector(-index.vector_of("shop/squares/squares-1"), Page(3))
    assert index.no_match(flagged)  # the opposite of a catalog vector matches nothing


def test_an_index_built_before_the_threshold_never_flags(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    build_index(shapes_catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False))
    manifest = tmp_path / "idx" / "current" / "manifest.json"
    raw = json.loads(manifest.read_text())
    raw["extra"] = {"embedded": 16}
    manifest.write_text(json.dumps(raw))
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    assert index.no_match_below is None and index.rerank == RerankParams()
    assert not index.no_match(index.search(-index.vector_of("shop/squares/squares-1"), Page(3)))
