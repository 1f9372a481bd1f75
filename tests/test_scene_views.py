"""Furnished views of catalog pictures indexed besides them (`index build --scenes N`)."""

from pathlib import Path

import numpy as np
import pytest

import index.scene_views as scene_views
from index.build import BuildOptions, build_index
from index.catalog import load_catalog
from index.shopper_augment import Scene
from retrieval.crop_gate import CropGate
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.results import Page
from retrieval.scene_views import SceneViews, WithoutScenes

SQUARES_AMONG_CIRCLES = {"squares": Scene("circles", 1, 2, (0.5, 0.8))}


@pytest.fixture
def squares_scene(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes catalog has no tables: its squares stand among its circles instead."""
    monkeypatch.setattr(scene_views, "SCENES", SQUARES_AMONG_CIRCLES)


def _load(path: Path) -> np.ndarray:
    return np.zeros((8, 8, 3), np.uint8)


@pytest.mark.usefixtures("squares_scene")
def test_each_picture_with_a_scene_gets_views_keyed_by_its_company(shapes_catalog: Path) -> None:
    entries = load_catalog(shapes_catalog).entries
    squares = [e for e in entries if e.kind == "squares"]
    jobs = scene_views.scene_jobs(entries, 2, _load)
    assert [e for e, _ in jobs] == squares + squares  # view 0 of each, then view 1
    assert [j.key for _, j in jobs] == [j.key for _, j in scene_views.scene_jobs(entries, 2, _load)]
    assert len({j.key for _, j in jobs}) == len(jobs)
    assert scene_views.scene_jobs(entries, 0, _load) == []
    with pytest.raises(ValueError, match=r"0\.\.8"):
        scene_views.scene_jobs(entries, 9, _load)
    # another pool of companions makes other views, and so other keys
    fewer = [e for e in entries if e.kind != "circles" or not e.image.name.startswith("circles-0")]
    moved = {j.key for _, j in scene_views.scene_jobs(fewer, 2, _load)}
    assert moved != {j.key for _, j in jobs}
    # no companion of the scene's kind: no views
    assert scene_views.scene_jobs([e for e in entries if e.kind != "circles"], 2, _load) == []


@pytest.mark.usefixtures("squares_scene")
def test_scene_views_find_their_product_and_stay_out_of_what_reads_pictures(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    quiet = BuildOptions(progress=False, batch_size=8, scenes=0)
    plain = build_index(shapes_catalog, tmp_path / "plain", tiny_extractor, quiet)
    entries = load_catalog(shapes_catalog).entries
    squares = sum(e.kind == "squares" for e in entries)
    with_scenes = BuildOptions(progress=False, batch_size=8, scenes=2)
    built = build_index(shapes_catalog, tmp_path / "scenes", tiny_extractor, with_scenes)
    assert built.vectors == plain.vectors + 2 * squares and built.products == plain.products
    without, index = (
        open_index(tmp_path / name, tiny_extractor.fingerprint) for name in ("plain", "scenes")
    )
    assert index.scene_views == SceneViews(plain.vectors, 2 * squares)
    assert without.scene_views is None and index.crop_gate is None
    assert index.pictures == without.pictures == plain.vectors
    assert index.info.images == without.info.images  # pictures, not their scenes
    np.testing.assert_allclose(index.picture_vectors(), without.picture_vectors(), atol=1e-6)
    assert index.no_match_below == pytest.approx(without.no_match_below)
    square = next(e for e in entries if e.kind == "squares")
    np.testing.assert_allclose(index.vector_of(square.id), without.vector_of(square.id), atol=1e-6)

    # a photo like the first scene view finds that square first, at about cosine 1
    job = scene_views.scene_jobs(load_catalog(shapes_catalog).entries, 1, _decoded(tiny_extractor))
    owner, first = job[0]
    query = tiny_extractor.embed([first.load()])[0]
    found = index.search(query, Page(len(index)))
    assert found[0].product.id == owner.id and found[0].score == pytest.approx(1.0, abs=1e-4)
    assert without.search(query, Page(1))[0].score < found[0].score - 1e-3
    ids = [h.product.id for h in found] + [p.id for h in found for p in h.also_as]
    assert len(ids) == len(set(ids)) == len(index)  # one slot per product, scenes or not
    # rooms rank against whole pictures alone: the object finder's pool and a room's kind
    alone = without.search(query, Page(len(index)))
    pictures_only = index.search(query, Page(len(index)), scenes=False)
    assert [(h.product.id, round(h.score, 5)) for h in pictures_only] == [
        (h.product.id, round(h.score, 5)) for h in alone
    ]
    nearest, before = index.nearest(query, 5), without.nearest(query, 5)
    assert [(r, round(c, 5)) for r, c in nearest] == [(r, round(c, 5)) for r, c in before]

    again = build_index(shapes_catalog, tmp_path / "scenes", tiny_extractor, with_scenes)
    assert again.embedded == 0  # the scene views' vectors are cached like the pictures'


@pytest.mark.usefixtures("squares_scene")
def test_crops_follow_the_scene_views_and_stay_gated(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    options = BuildOptions(progress=False, batch_size=8, scenes=1, views=1)
    built = build_index(shapes_catalog, tmp_path / "both", tiny_extractor, options)
    index = open_index(tmp_path / "both", tiny_extractor.fingerprint)
    pictures = len(index.store.product_of_vector) - index.scene_views.count
    pictures //= 2  # each picture once whole, once as its crop
    assert index.pictures == pictures == index.scene_views.first_vector
    assert index.crop_gate == CropGate(1, pictures + index.scene_views.count)
    assert built.vectors == 2 * pictures + index.scene_views.count


def test_the_object_gate_drops_scene_views_and_keeps_the_crops_gate() -> None:
    scenes = SceneViews(first_vector=10, count=4)  # ids 10..13 are scene views, crops from 14
    scores = np.array([0.5, 0.9, 0.9, 0.74, 0.76, 0.2])
    ids = np.array([3, 10, 13, 15, 14, -1])
    assert WithoutScenes(scenes).passes(scores, ids).tolist() == [
        True,
        False,
        False,
        True,
        True,
        True,
    ]
    gated = WithoutScenes(scenes, CropGate(1, 14, min_score=0.75))
    assert gated.passes(scores, ids).tolist() == [True, False, False, False, True, True]
    assert gated.count == 1 and WithoutScenes(scenes).count == 0
    assert SceneViews.from_manifest(scenes.to_manifest()) == scenes
    assert SceneViews.from_manifest({"embedded": 3}) is None


def test_the_command_refuses_more_scenes_than_it_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from snapfind.cli import main
    from tests.synthetic import tiny_build_command

    build = tiny_build_command(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main([*build, "--scenes", "9"])
    assert refused.value.code == 2 and "--scenes: invalid choice: 9" in capsys.readouterr().err


def _decoded(extractor: Extractor):
    """A loader that decodes catalog pictures as the build does."""
    from retrieval.model_input import decode_for_model

    return lambda path: decode_for_model(path.read_bytes(), extractor.input_size)
