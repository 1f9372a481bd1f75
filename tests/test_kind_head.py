"""The kind head (index/category_head.py) and furnished views: served form, training, tune."""

from dataclasses import replace
from pathlib import Path

import numpy as np

from index.category_head import CategoryHeadOptions, kind_labels, residual_of, train_kind_map
from index.shopper_augment import WHITE, Scene, arrange, furnished_view, pick_companions
from index.tune import TuneOptions, tune
from retrieval.extractor import Extractor
from retrieval.head import ProjectionHead, load_head
from tests.synthetic import draw_item

FAST_KINDS = CategoryHeadOptions(dim=8, steps=40, batch=64, progress=False)


def test_the_residual_serves_the_concatenation_exactly() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 12))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    kind_map = rng.normal(size=(12, 4))
    head = ProjectionHead.from_array(residual_of(kind_map, strength=0.5))
    served = head.apply(x.astype(np.float32))
    joined = np.concatenate([x, 0.5 * x @ kind_map], axis=1)
    joined /= np.linalg.norm(joined, axis=1, keepdims=True)
    assert np.allclose(served @ served.T, joined @ joined.T, atol=1e-5)
    assert np.allclose(residual_of(kind_map, strength=0.0), 0.0)


def test_catch_all_pictures_are_kinds_of_their_own() -> None:
    labels = kind_labels(np.array(["bed", "other", "bed", "other", "sofa"]), np.arange(5))
    assert labels[0] == labels[2] != labels[4]
    assert len({labels[1], labels[3], labels[0], labels[4]}) == 4


def test_training_draws_one_kind_together_across_a_nuisance() -> None:
    """Two kinds told apart by a weak direction, items spread by a strong nuisance (colour):
    after training, an unseen item's nearest neighbour is of its kind far more often."""
    rng = np.random.default_rng(1)

    def items(n: int) -> tuple[np.ndarray, np.ndarray]:
        kind = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 16))
        x[:, 0] = 0.6 * (2 * kind - 1)  # the kind, weak
        x[:, 1:4] *= 3.0  # the nuisance, strong
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), kind

    train, train_kind = items(300)
    test, test_kind = items(200)

    def nearest_agrees(vectors: np.ndarray) -> float:
        similarity = vectors @ vectors.T - 2 * np.eye(len(vectors))
        return float(np.mean(test_kind[similarity.argmax(1)] == test_kind))

    names = np.array(["bed", "sofa"])[train_kind]
    options = replace(FAST_KINDS, steps=150, learning_rate=1e-2)
    kind_map = train_kind_map(train, names, np.arange(300), options)
    tuned = ProjectionHead.from_array(residual_of(kind_map)).apply(test)
    assert nearest_agrees(tuned) > nearest_agrees(test) + 0.1


def test_furnished_views_are_seeded_and_keep_the_companions() -> None:
    table = np.asarray(draw_item("squares", 1, size=96))
    chairs = [np.asarray(draw_item("circles", n, size=96)) for n in range(3)]
    scene = Scene("circles", 2, 3, (0.7, 1.1))
    key = (0, "hash", 0)
    first = furnished_view(table, chairs, scene, key)
    assert np.array_equal(first, furnished_view(table, chairs, scene, key))
    assert not np.array_equal(first, furnished_view(table, chairs, scene, (0, "hash", 1)))
    assert first.dtype == np.uint8 and first.shape[2] == 3
    canvas = arrange(table, chairs, scene, np.random.default_rng(0))
    alone = arrange(table, [], scene, np.random.default_rng(0))
    assert canvas.shape[1] > canvas.shape[0]
    filled = ~(canvas > WHITE).all(axis=2)
    assert filled.sum() > (~(alone > WHITE).all(axis=2)).sum()
    pool = [f"h{n}" for n in range(10)]
    chosen = pick_companions(pool, scene, key)
    assert chosen == pick_companions(pool, scene, key) and 2 <= len(chosen) <= 3
    assert len(set(chosen)) == len(chosen)


def test_tune_learns_a_kind_head_with_furnished_views(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch
) -> None:
    import index.tune as tune_module

    monkeypatch.setattr(tune_module, "SCENES", {"squares": Scene("circles", 1, 2, (0.5, 0.8))})
    options = TuneOptions(holdout=0.3, progress=False, kinds=FAST_KINDS, scenes=2)
    index_dir = tmp_path / "idx"
    report = tune(shapes_catalog, index_dir, tiny_extractor, options)
    head = load_head(index_dir)
    assert head is not None and report.head.is_file()
    assert not np.allclose(head.residual, 0.0)
    assert np.allclose(head.residual, head.residual.T, atol=1e-5)  # the served concatenation
    cached = sorted(p.name for p in (index_dir / "cache").glob("tune-*-f*.npy"))
    assert len(cached) == 2

    def no_scenes(*_: object) -> np.ndarray:
        raise AssertionError("furnished views were made again")

    monkeypatch.setattr(tune_module, "furnished_view", no_scenes)
    again = tune(shapes_catalog, index_dir, tiny_extractor, options)
    assert again.trained == report.trained


def test_scenes_without_companions_make_no_views(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch
) -> None:
    import index.tune as tune_module

    def never(*_: object) -> np.ndarray:
        raise AssertionError("a furnished view without companions")

    monkeypatch.setattr(tune_module, "SCENES", {"squares": Scene("sofas", 1, 2, (0.5, 0.8))})
    monkeypatch.setattr(tune_module, "furnished_view", never)
    options = TuneOptions(holdout=0.3, progress=False, kinds=FAST_KINDS, scenes=1)
    report = tune(shapes_catalog, tmp_path / "idx", tiny_extractor, options)
    assert report.head.is_file()
