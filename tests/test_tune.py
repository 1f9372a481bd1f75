"""`snapfind tune`: shopper-like views, the light head, and training it on a tiny catalog."""

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.catalog import load_catalog
from index.category_head import MAX_DIM, CategoryHeadOptions
from index.shopper_augment import WHITE, Scene, on_background, room_texture, shopper_view
from index.tune import MAX_VIEWS, TuneOptions, judge, train_residual, tune
from retrieval.errors import ConfigError, IndexMismatchError
from retrieval.extractor import Extractor
from retrieval.head import HEAD_FILE, ProjectionHead, load_head
from retrieval.index_store import open_index
from snapfind.cli import main
from tests.synthetic import draw_item
from tests.test_cli import TINY

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


@pytest.mark.parametrize(
    "make",
    [
        lambda: TuneOptions(views=0),
        lambda: TuneOptions(views=-1),
        lambda: TuneOptions(holdout=0.0),
        lambda: TuneOptions(holdout=1.0),
        lambda: TuneOptions(holdout=float("nan")),
        lambda: TuneOptions(steps=-1),
        lambda: TuneOptions(scenes=-1),
        lambda: CategoryHeadOptions(steps=-1),
        lambda: CategoryHeadOptions(dim=0),
        lambda: CategoryHeadOptions(dim=MAX_DIM + 1),
        lambda: TuneOptions(views=MAX_VIEWS + 1),
    ],
)
def test_options_that_cannot_train_are_refused(make) -> None:
    with pytest.raises(ConfigError):
        make()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--views", "0"], "views must be 1 to 16 (got 0)"),
        (["--views", "-2"], "views must be 1 to 16 (got -2)"),
        (["--views", "17"], "views must be 1 to 16 (got 17)"),  # each held for every picture
        (["--kind-dim", "100000000"], "kind dimensions must be 1 to 1024"),
        (["--holdout", "1"], "holdout must be a share between 0 and 1"),
        (["--holdout", "0"], "holdout must be a share between 0 and 1"),
        (["--steps", "-1"], "steps must be 0 or more"),
        (["--steps", "-1", "--head", "identity"], "steps must be 0 or more"),
    ],
)
def test_tune_command_refuses_bad_options_in_one_line(
    shapes_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags, message
) -> None:
    out = tmp_path / "idx"
    code = main(["tune", "--catalog", str(shapes_catalog), "--out", str(out), *flags, *TINY])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith(f"snapfind: error: {message}")
    assert len(captured.err.splitlines()) == 1 and not captured.out
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(("held", "side"), [(True, "train on"), (False, "judge on")])
def test_a_split_with_an_empty_side_is_a_clear_error(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch, held, side
) -> None:
    """A share in (0, 1) can still hold every picture of a small catalog out, or none."""
    import index.tune as tune_module

    monkeypatch.setattr(tune_module, "held_out", lambda *_: held)
    for kinds in (None, CategoryHeadOptions(dim=8, steps=5, progress=False)):
        with pytest.raises(ConfigError, match=f"leaves no picture to {side}"):
            tune(shapes_catalog, tmp_path / "idx", tiny_extractor, replace(FAST, kinds=kinds))
    assert not (tmp_path / "idx").exists()


def test_steps_and_seed_reach_the_head_that_is_trained(
    shapes_catalog: Path, tmp_path: Path, monkeypatch
) -> None:
    """No --steps: each head keeps its own default (the shipped kind head is unchanged)."""
    import index.tune as tune_module

    seen: list[object] = []

    def kind_map(features: np.ndarray, _c, _p, options: CategoryHeadOptions) -> np.ndarray:
        seen.append(options)
        return np.zeros((features.shape[1], options.dim), np.float32)

    def residual(_v, _r, clean: np.ndarray, _l, options: TuneOptions) -> np.ndarray:
        seen.append(options)
        return np.zeros((clean.shape[1], clean.shape[1]), np.float32)

    monkeypatch.setattr(tune_module, "train_kind_map", kind_map)
    monkeypatch.setattr(tune_module, "train_residual", residual)
    base = ["tune", "--catalog", str(shapes_catalog), "--out", str(tmp_path / "idx"), *TINY]
    for flags in (
        [],  # the default head: kinds
        ["--steps", "7", "--seed", "3"],
        ["--head", "identity"],
        ["--head", "identity", "--steps", "7"],
    ):
        assert main([*base, "--views", "1", "--no-progress", *flags]) == 0
    default_kinds, chosen_kinds, default_identity, chosen_identity = seen
    assert default_kinds == CategoryHeadOptions(progress=False)
    assert (chosen_kinds.steps, chosen_kinds.seed) == (7, 3)
    assert default_identity.steps == TuneOptions.steps
    assert chosen_identity.steps == 7


def test_unreadable_pictures_are_left_out_and_the_view_caches_follow(
    shapes_catalog: Path,
    tmp_path: Path,
    tiny_extractor: Extractor,
    monkeypatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(shapes_catalog, catalog)
    broken = catalog / "shop" / "circles" / "zz_empty.jpg"
    broken.write_bytes(b"")
    index_dir = tmp_path / "idx"
    with caplog.at_level("WARNING", logger="index.tune"):
        report = tune(catalog, index_dir, tiny_extractor, FAST)
    assert report.trained + report.held_out == 15 and report.unreadable == 1
    assert "left out 1 of 16 catalog pictures" in caplog.text and "zz_empty.jpg" in caplog.text

    draw_item("circles", seed=999).save(broken, quality=92)  # now readable: views made for it
    mended = tune(catalog, index_dir, tiny_extractor, FAST)
    assert mended.trained + mended.held_out == 16 and mended.unreadable == 0

    import index.tune as tune_module

    def no_views(*_: object) -> np.ndarray:
        raise AssertionError("views were made again")

    broken.unlink()  # fewer pictures: the cached views of the others still serve
    monkeypatch.setattr(tune_module, "shopper_view", no_views)
    again = tune(catalog, index_dir, tiny_extractor, FAST)
    assert again.trained + again.held_out == 15


def test_a_damaged_view_cache_is_made_again(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    index_dir = tmp_path / "idx"
    first = tune(shapes_catalog, index_dir, tiny_extractor, FAST)
    [keys] = (index_dir / "cache").glob("tune-*-v0.json")
    keys.write_text('["only one hash"')  # cut short, as by a run stopped while writing it
    again = tune(shapes_catalog, index_dir, tiny_extractor, FAST)
    assert again.recall_after == first.recall_after and len(keys.read_text()) > 100


def test_furnished_views_are_made_again_when_their_companions_change(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch
) -> None:
    """A companion gone from the trained pictures (removed, unreadable, now held out) must not
    stay in the cached furnished views."""
    import index.tune as tune_module

    catalog = tmp_path / "catalog"
    shutil.copytree(shapes_catalog, catalog)
    monkeypatch.setattr(tune_module, "SCENES", {"squares": Scene("circles", 1, 2, (0.5, 0.8))})
    picked: list[str] = []
    pick_companions = tune_module.pick_companions

    def recording(*args: object) -> list[str]:
        company = pick_companions(*args)
        picked.extend(company)
        return company

    monkeypatch.setattr(tune_module, "pick_companions", recording)
    options = replace(FAST, kinds=CategoryHeadOptions(dim=8, steps=0, progress=False), scenes=1)
    tune(catalog, tmp_path / "idx", tiny_extractor, options)
    assert picked
    entries = load_catalog(catalog).entries
    squares = {e.content_hash for e in entries if e.kind == "squares"}
    gone = next(h for h in picked if h not in squares)
    for entry in entries:
        if entry.content_hash == gone:
            entry.image.unlink()
    made: list[int] = []
    furnished_view = tune_module.furnished_view

    def counting(*args: object) -> np.ndarray:
        made.append(1)
        return furnished_view(*args)

    monkeypatch.setattr(tune_module, "furnished_view", counting)
    tune(catalog, tmp_path / "idx", tiny_extractor, options)
    assert made
