"""Crops of each catalog picture indexed besides it (`index build --views N`)."""

from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.catalog import load_catalog
from index.indexed_views import crop, view_key, with_views
from retrieval.crop_gate import CropGate
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.model_input import decode_for_model
from retrieval.results import Page


def test_crops_are_the_centre_then_the_four_corners() -> None:
    rows, cols = np.meshgrid(np.arange(100), np.arange(50), indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)  # (100, 50, 3)
    centre, top_left, top_right, bottom_left, bottom_right = (crop(image, v) for v in range(5))
    assert {c.shape for c in (centre, top_left, bottom_right)} == {(80, 40, 3)}
    assert tuple(centre[0, 0, :2]) == (10, 5)
    assert tuple(top_left[0, 0, :2]) == (0, 0)
    assert tuple(top_right[0, -1, :2]) == (0, 49)
    assert tuple(bottom_left[-1, 0, :2]) == (99, 0)
    assert tuple(bottom_right[-1, -1, :2]) == (99, 49)
    with pytest.raises(ValueError, match="crop view 5"):
        crop(image, 5)


def test_whole_pictures_come_first_then_the_crops(shapes_catalog: Path) -> None:
    entries = load_catalog(shapes_catalog).entries[:3]
    order = with_views(entries, 2)
    assert [key for _, key in order[:3]] == [e.content_hash for e in entries]
    assert [key for _, key in order[3:6]] == [view_key(e.content_hash, 0) for e in entries]
    assert [e.id for e, _ in order[6:]] == [e.id for e in entries]
    assert with_views(entries, 0) == [(e, e.content_hash) for e in entries]
    with pytest.raises(ValueError, match=r"0\.\.5"):
        with_views(entries, 6)


def test_a_crop_finds_its_product_through_its_own_vector(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    quiet = BuildOptions(progress=False, batch_size=8)
    plain = build_index(shapes_catalog, tmp_path / "plain", tiny_extractor, quiet)
    built = build_index(
        shapes_catalog, tmp_path / "views", tiny_extractor, BuildOptions(progress=False, views=2)
    )
    assert built.vectors == 3 * plain.vectors and built.products == plain.products
    without, index = (
        open_index(tmp_path / name, tiny_extractor.fingerprint) for name in ("plain", "views")
    )
    assert index.crop_gate == CropGate(2, plain.vectors) and without.crop_gate is None
    assert index.info.images == without.info.images == plain.vectors  # pictures, not crops
    # the whole picture stays each product's first vector, and the threshold is calibrated on
    # whole pictures only (a crop would be every picture's nearest neighbour)
    entry = load_catalog(shapes_catalog).entries[7]
    np.testing.assert_allclose(index.vector_of(entry.id), without.vector_of(entry.id), atol=1e-6)
    assert index.no_match_below == pytest.approx(without.no_match_below)

    pixels = decode_for_model(entry.image.read_bytes(), tiny_extractor.input_size)
    query = tiny_extractor.embed([crop(pixels, 1)])[0]
    found = index.search(query, Page(len(index)))
    assert found[0].product.id == entry.id and found[0].score == pytest.approx(1.0, abs=1e-4)
    assert without.search(query, Page(1))[0].score < found[0].score - 1e-3
    ids = [h.product.id for h in found] + [p.id for h in found for p in h.also_as]
    assert len(ids) == len(set(ids)) == len(index)  # one slot per product, crops or not
    # crops below the gate's floor do not count: with a floor no crop reaches, the ranking
    # is the one without crops
    index.crop_gate = CropGate(2, plain.vectors, min_score=1.01)
    gated, plain_hits = index.search(query, Page(6)), without.search(query, Page(6))
    assert [(h.product.id, round(h.score, 5)) for h in gated] == [
        (h.product.id, round(h.score, 5)) for h in plain_hits
    ]

    again = build_index(
        shapes_catalog, tmp_path / "views", tiny_extractor, BuildOptions(progress=False, views=2)
    )
    assert again.embedded == 0  # the crops' vectors are cached like the pictures'
    fewer = build_index(
        shapes_catalog, tmp_path / "views", tiny_extractor, BuildOptions(progress=False, views=1)
    )
    assert fewer.vectors == 2 * plain.vectors and fewer.embedded == 0
    assert (
        build_index(
            shapes_catalog,
            tmp_path / "views",
            tiny_extractor,
            BuildOptions(progress=False, views=2),
        ).embedded
        == plain.vectors
    )  # crop 1 was pruned with the build that no longer used it


def test_the_command_builds_crops_and_refuses_more_than_it_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from snapfind.cli import main
    from tests.synthetic import tiny_build_command

    build = tiny_build_command(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main([*build, "--views", "6"])
    assert refused.value.code == 2 and "--views: invalid choice: 6" in capsys.readouterr().err
    assert main([*build, "--views", "1", "--no-progress"]) == 0
    products = int(capsys.readouterr().out.split(" products, ")[0].split()[-1])
    index = open_index(tmp_path / "idx")
    assert index.vectors == 2 * products and index.crop_gate == CropGate(1, products)


def test_the_gate_counts_whole_pictures_always_and_crops_from_its_floor() -> None:
    gate = CropGate(count=2, first_vector=10, min_score=0.75)
    scores = np.array([0.5, 0.9, 0.74, 0.76, 0.2])
    ids = np.array([3, 12, 15, 11, -1])
    assert gate.passes(scores, ids).tolist() == [True, True, False, True, True]
    assert CropGate.from_manifest({"embedded": 3} | gate.to_manifest()) == gate
    assert CropGate.from_manifest({"embedded": 3}) is None  # an index without crops
