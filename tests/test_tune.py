"""`snapfind tune`: shopper-like views, the light head, and training it on a tiny catalog."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.shopper_augment import WHITE, on_background, room_texture, shopper_view
from index.tune import TuneOptions, judge, train_residual, tune
from retrieval.errors import ConfigError, IndexMismatchError
from retrieval.extractor import Extractor
from retrieval.head import HEAD_FILE, ProjectionHead, load_head
from retrieval.index_store import open_index
from tests.synthetic import draw_item

FAST = TuneOptions(steps=30, batch=64, holdout=0.3, progress=False, learning_rate=1e-2)


def test_shopper_views_are_seeded_and_lose_the_studio_white() -> None:
    product = np.asarray(draw_item("squares", 3, size=96))
    first = shopper_view(product, 0, "hash", 0)
    assert np.array_equal(first, shopper_view(product, 0, "hash", 0))
    assert not np.array_equal(first, shopper_view(product, 0, "hash", 1))
    assert first.ndim == 3 and first.shape[2] == 3 and first.dtype == np.uint8
    rng = np.random.default_rng(1)
    pasted = on_background(product, room_texture(product.shape[:2], rng))
    assert (pasted > WHITE).all(axis=2).mean() < 0.05 < (product > WHITE).all(axis=2).mean()


def test_zero_head_is_the_identity_and_survives_a_round_trip(tmp_path: Path) -> None:
    features = np.eye(4, dtype=np.float32)[:3]
    zero = ProjectionHead.from_array(np.zeros((4, 4)))
    assert np.allclose(zero.apply(features), features)
    head = ProjectionHead.from_array(np.random.default_rng(0).normal(size=(4, 4)))
    head.save(tmp_path / HEAD_FILE)
    loaded = load_head(tmp_path)
    assert loaded is not None and loaded.head_id == head.head_id != zero.head_id
    assert np.allclose(np.linalg.norm(loaded.apply(features), axis=1), 1.0)
    assert load_head(tmp_path / "elsewhere") is None


def test_a_bad_head_file_is_a_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / HEAD_FILE, residual=np.zeros((3, 4)))
    with pytest.raises(ConfigError, match="square"):
        load_head(tmp_path)
    (tmp_path / HEAD_FILE).write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match="cannot read"):
        load_head(tmp_path)


def test_training_learns_to_undo_a_distortion() -> None:
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(60, 16)).astype(np.float32)
    clean /= np.linalg.norm(clean, axis=1, keepdims=True)
    distortion = np.eye(16) + rng.normal(scale=0.6, size=(16, 16))  # a shift of domain
    views = (clean @ distortion + rng.normal(scale=0.05, size=clean.shape)).astype(np.float32)
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    rows, labels = np.arange(60), np.arange(60) % 3
    options = TuneOptions(steps=150, batch=60, learning_rate=2e-2, decay=0.0, progress=False)
    residual = train_residual(views, rows, clean, labels, options)
    before = judge(ProjectionHead.from_array(np.zeros((16, 16))), views, rows, clean, labels)
    after = judge(ProjectionHead.from_array(residual), views, rows, clean, labels)
    assert after[0] > before[0] and after[0] >= 0.9


def test_tune_saves_a_head_that_build_and_search_apply(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch
) -> None:
    index_dir = tmp_path / "idx"
    report = tune(shapes_catalog, index_dir, tiny_extractor, FAST)
    assert report.head == index_dir / HEAD_FILE and report.head.is_file()
    assert report.trained + report.held_out == 15 and report.held_out > 0
    assert 0.0 <= report.recall_after <= 1.0
    untrained = tune(shapes_catalog, index_dir, tiny_extractor, replace(FAST, steps=0))
    assert untrained.recall_after == untrained.recall_before == report.recall_before
    assert untrained.category_after == untrained.category_before == report.category_before

    # a re-run reads the cached views instead of making them again
    import index.tune as tune_module

    def no_views(*_: object) -> np.ndarray:
        raise AssertionError("views were made again")

    monkeypatch.setattr(tune_module, "shopper_view", no_views)
    again = tune(shapes_catalog, index_dir, tiny_extractor, FAST)
    assert again.trained == report.trained

    head = load_head(index_dir)
    tuned = Extractor("efficientnetb0", "none", 64, head)
    assert (
        tuned.fingerprint.head == head.head_id and tuned.fingerprint != tiny_extractor.fingerprint
    )
    build_index(shapes_catalog, index_dir, tuned, BuildOptions(progress=False))
    index = open_index(index_dir, tuned.fingerprint)
    assert index.manifest.fingerprint.head == head.head_id
    with pytest.raises(IndexMismatchError, match="head"):
        open_index(index_dir, tiny_extractor.fingerprint)
    image = np.asarray(draw_item("circles", 0))
    vector = tuned.embed_one(image)
    assert np.allclose(vector, head.apply(tiny_extractor.embed_one(image)[None])[0], atol=1e-5)


def test_identity_head_trains_on_several_views_of_each_picture(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """Each of the views of a trained picture is taught to find that picture: the rows follow
    the views (`snapfind tune --head identity` with its default of 4 views)."""
    report = tune(shapes_catalog, tmp_path / "idx", tiny_extractor, replace(FAST, views=3))
    assert report.trained + report.held_out == 15 and report.held_out > 0
    head = load_head(tmp_path / "idx")
    features = np.eye(head.dim, dtype=np.float32)[:3]
    moved = head.apply(features)
    assert not np.allclose(moved, features, atol=1e-4)  # a trained map, not the identity


def test_tune_refuses_an_extractor_that_already_has_a_head(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    head = ProjectionHead.from_array(np.zeros((1280, 1280), dtype=np.float32))
    tuned = Extractor("efficientnetb0", "none", 64, head)
    with pytest.raises(ConfigError, match="plain backbone"):
        tune(shapes_catalog, tmp_path / "idx", tuned, FAST)
