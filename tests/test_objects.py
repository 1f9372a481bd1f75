"""Objects in a room photo: regions, boxes, labels — synthetic rooms, real Lite0 features."""

import logging
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from index.build import BuildOptions, build_index
from retrieval.index_store import open_index
from retrieval.object_options import CUT_OUTS
from retrieval.objects import (
    CUT_OUT_WEIGHT,
    ObjectFinder,
    _named,
    looks_like_product_photo,
    photo_kind,
)
from retrieval.regions import Box, _boxes, non_max_suppression, region_encoder_for
from retrieval.results import Hit, Page, Product
from retrieval.search import SearchService
from tests.synthetic import FURNITURE, compose_room, draw_furniture


def _centre_inside(inner: Box, outer: Box) -> bool:
    x, y = (inner.left + inner.right) / 2, (inner.top + inner.bottom) / 2
    return outer.left <= x < outer.right and outer.top <= y < outer.bottom


@pytest.fixture(scope="module")
def finder(tmp_path_factory: pytest.TempPathFactory, lite0_extractor) -> ObjectFinder:
    root = tmp_path_factory.mktemp("objects")
    for kind in FURNITURE:
        folder = root / "catalog" / kind
        folder.mkdir(parents=True)
        draw_furniture(kind).save(folder / f"{kind}.jpg", quality=95)
    options = BuildOptions(progress=False, objects=True)  # the finder reads its region hubness
    build_index(root / "catalog", root / "index", lite0_extractor, options)
    index = open_index(root / "index", lite0_extractor.fingerprint)
    return ObjectFinder(region_encoder_for(lite0_extractor), index)


@pytest.mark.parametrize("kinds", [("sofa", "lamp"), ("sofa", "lamp", "rug", "plant")])
def test_each_object_of_a_room_is_found_with_itsdraw_furniture(finder: ObjectFinder, kinds) -> None:
    image, truth = compose_room(kinds)
    found = finder.find(image, k=2)
    assert 2 <= len(found) <= finder.max_objects
    for kind, box in truth.items():
        matching = [o for o in found if _centre_inside(o.box, box)]
        assert matching, f"no box over the {kind}: {[o.box for o in found]}"
        best = matching[0]
        assert best.hits[0].product.id.endswith(kind), (kind, best.hits[0].product.id)
        assert best.label == kind
        assert best.vector.shape == (1280,)


def test_a_product_photo_gets_no_object_step(finder: ObjectFinder, lite0_extractor) -> None:
    photo = np.asarray(draw_furniture("lamp"))
    assert looks_like_product_photo(photo)
    assert finder.find(photo) == []
    hits = SearchService(lite0_extractor, finder.index).search_image(photo, Page(1)).hits
    assert hits[0].product.id.endswith("lamp")  # today's whole-photo search, unchanged


def test_a_room_is_not_a_product_photo() -> None:
    image, _ = compose_room(("sofa",))
    assert not looks_like_product_photo(image)


def test_boxes_respect_size_and_aspect() -> None:
    boxes = _boxes(8, 10, 2)
    sides = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    assert sides.min() >= 2
    assert (sides.max(axis=1) <= 2.5 * sides.min(axis=1)).all()
    assert [0, 0, 10, 8] in boxes.tolist()  # the whole photo is a candidate too


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([(0, 0, 10, 10), (1, 1, 11, 11), (20, 20, 30, 30)])
    scores = np.array([0.5, 0.9, 0.1])
    assert non_max_suppression(boxes, scores, 0.3, 5) == [1, 2]
    assert non_max_suppression(boxes, scores, 0.3, 1) == [1]
    assert non_max_suppression(boxes, scores, 0.9, 5) == [1, 0, 2]
    assert non_max_suppression(boxes, scores, 0.9, 5, keys=np.array([7, 7, 8])) == [1, 2]
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_product_photo_detection_needs_a_white_border(tmp_path: Path) -> None:
    grey = np.full((100, 100, 3), 128, np.uint8)
    framed = np.full((100, 100, 3), 255, np.uint8)
    framed[20:80, 20:80] = 40
    assert not looks_like_product_photo(grey)
    assert looks_like_product_photo(framed)
    cream = framed.copy()
    cream[..., 2] = 200  # white in two channels only: a cream wall, not the catalog's white
    assert not looks_like_product_photo(cream)
    edged = framed.copy()
    edged[:, :5] = 40  # one side of the border dark: a quarter of it, over the 10 % allowed
    assert not looks_like_product_photo(edged)
    edged[:, :5] = 255
    edged[:2, :2] = 40  # a few dark pixels in a corner: still white enough
    assert looks_like_product_photo(edged)


def test_the_first_object_is_a_map_box_cut_out_mixed_with_it_pooled_and_finds_its_product(
    finder: ObjectFinder, lite0_extractor
) -> None:
    image, truth = compose_room(("sofa", "lamp", "rug", "plant"))
    pooled = finder.find(image, k=2)
    cut = ObjectFinder(finder.encoder, finder.index, cut_outs=CUT_OUTS).find(image, k=2)

    first = cut[0]
    assert first.box in [o.box for o in pooled[:CUT_OUTS]]  # one of the map's best boxes
    pixels = image[first.box.top : first.box.bottom, first.box.left : first.box.right]
    alone = lite0_extractor.embed_one(pixels)
    pooled_vectors = {o.box: o.vector for o in pooled}
    mixed = CUT_OUT_WEIGHT * alone + (1 - CUT_OUT_WEIGHT) * pooled_vectors[first.box]
    assert np.allclose(first.vector, mixed / np.linalg.norm(mixed), atol=1e-5)
    kind = next(kind for kind, box in truth.items() if _centre_inside(first.box, box))
    assert first.hits[0].product.id.endswith(kind) and first.label == kind
    assert sorted(o.box.as_tuple() for o in cut) == sorted(o.box.as_tuple() for o in pooled)
    assert all(np.array_equal(o.vector, pooled_vectors[o.box]) for o in cut[1:])  # as before
    only_cut = ObjectFinder(finder.encoder, finder.index, cut_outs=CUT_OUTS, cut_out_weight=1.0)
    assert np.allclose(only_cut.find(image, k=2)[0].vector, alone, atol=1e-5)  # fifth pass's

    served = SearchService(lite0_extractor, finder.index).search_objects(image, k=2)
    kind = photo_kind(served.whole.hits)  # cut-outs on by default, led by the photo's kind
    as_served = ObjectFinder(finder.encoder, finder.index, cut_outs=CUT_OUTS).find(
        image, 2, None, kind
    )
    assert np.allclose(served.objects[0].result.vector, as_served[0].vector, atol=1e-5)


def test_the_box_of_the_photos_own_kind_comes_first(finder: ObjectFinder) -> None:
    image, _ = compose_room(("sofa", "lamp", "rug", "plant"))
    by_map = finder.find(image, k=2)
    last = by_map[-1]
    led = finder.find(image, k=2, kind=last.label)
    assert led[0].box == last.box and led[0].label == last.label
    assert [o.box for o in led[1:]] == [o.box for o in by_map[:-1]]  # the rest keep their order
    unmatched = finder.find(image, k=2, kind="wardrobe")  # no box of that kind: the map's order
    assert [o.box for o in unmatched] == [o.box for o in by_map]


def test_the_first_object_keeps_the_kind_it_leads_for(
    finder: ObjectFinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Object 1 leads for showing the photo's kind; where its cut-out reads as another kind
    (a bed's end as a sofa), its button and its page still name and show the photo's kind."""
    image, _ = compose_room(("sofa", "lamp", "rug", "plant"))
    by_map = finder.find(image, k=2)
    kind = by_map[-1].label
    stray = next(o for o in by_map if o.label != kind)  # what the cut-out is made to read as
    monkeypatch.setattr(
        ObjectFinder,
        "_mixed",
        lambda self, lead, pooled, typical: replace(lead, vector=stray.vector),
    )
    cut = ObjectFinder(finder.encoder, finder.index, cut_outs=CUT_OUTS).find(image, 2, None, kind)
    assert np.array_equal(cut[0].vector, stray.vector)  # the stray reading was searched
    assert cut[0].label == cut[0].kind == kind and cut[0].hits[0].product.categories[0] == kind
    assert [o.label for o in cut[1:]] == [o.label for o in by_map[:-1]]  # the rest as before
    assert [o.kind for o in cut[1:]] == [""] * (len(cut) - 1)  # their own first products lead


def test_an_objects_page_shows_its_first_products_kind_first(
    tmp_path: Path, lite0_extractor
) -> None:
    """The index's second stage groups an object's page as it groups a whole photo's: a
    second sofa comes right after the first one, before the room's other pieces."""
    catalog = tmp_path / "catalog"
    for kind in FURNITURE:
        (catalog / kind).mkdir(parents=True)
        draw_furniture(kind).save(catalog / kind / f"{kind}.jpg", quality=95)
    second_sofa = draw_furniture("plant").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    second_sofa.save(catalog / "sofa" / "planter-sofa.jpg", quality=95)
    options = BuildOptions(progress=False, objects=True)
    build_index(catalog, tmp_path / "index", lite0_extractor, options)
    index = open_index(tmp_path / "index", lite0_extractor.fingerprint)
    finder = ObjectFinder(region_encoder_for(lite0_extractor), index)
    image, _ = compose_room(("sofa", "lamp", "rug", "plant"))
    sofa = next(o for o in finder.find(image, k=5) if o.hits[0].product.id.endswith("sofa"))
    assert [hit.product.categories[0] for hit in sofa.hits[:2]] == ["sofa", "sofa"]


def test_a_photo_reads_as_its_first_products_kind_and_a_bin_as_none() -> None:
    def page(*categories: tuple[str, ...]) -> list:
        return [SimpleNamespace(product=SimpleNamespace(categories=c)) for c in categories]

    assert photo_kind(page(("table",), ("chair",))) == "table"
    assert photo_kind(page(("other",), ("chair",))) == ""  # IKEA's catch-all names no kind
    assert photo_kind(page((), ("chair",))) == ""
    assert photo_kind([]) == ""


def test_a_catch_all_label_reads_as_the_type_most_of_its_products_share() -> None:
    def page(*products: tuple[str, object]) -> list[Hit]:
        """Hits of (category, type) pairs, best first; None: the catalog gives no type."""
        return [
            Hit(Product(f"p{n}", "", (c,), None, extra={} if t is None else {"type": t}), 0.5)
            for n, (c, t) in enumerate(products)
        ]

    plants = [("other", "Potted plant")] * 3
    assert _named("other", page(*plants, ("other", "Cushion"))) == "potted plant"
    assert _named("other", page(*plants[:2], ("other", "Cushion"))) == "other"  # 2 of 10: few
    untyped = [("other", None)] * 3
    assert _named("other", page(*untyped, *plants)) == "other"  # most of them have none: a tie
    assert _named("other", page(("other", 7), ("other", " "), *plants)) == "potted plant"
    assert _named("other", page(*[("other", "TV bench")] * 3)) == "TV bench"
    assert _named("other", page(*[("chair", "Potted plant")] * 3)) == "other"  # not the bin's
    assert _named("other", page(*[("other", "Plant")] * 10, *plants)) == "plant"  # the top 10
    assert _named("sofa", page(*[("sofa", "Corner sofa")] * 5)) == "sofa"  # a kind stays
    parasols = [("other", "Parasol, hanging"), ("other", "Parasol with base"), ("other", "Parasol")]
    assert _named("other", page(*parasols, ("other", "Cushion"))) == "parasol"  # near types
    assert _named("other", page(*parasols[:2], *plants)) == "potted plant"  # a type first
    assert _named("other", page(*parasols[:2], ("other", "Box"))) == "other"  # 2 parasols
    sections = [("other", "2 sections"), ("other", "3 sections"), ("other", "1 section")]
    assert _named("other", page(*sections, ("other", "Box"))) == "other"  # counts name nothing
    assert _named("other", page(*[("other", "LED TV, wall")] * 2, ("other", "TV"))) == "TV"


def test_an_index_without_region_hubness_at_this_side_says_how_to_get_it(
    finder: ObjectFinder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="retrieval.objects"):
        ObjectFinder(finder.encoder, finder.index)  # built with --objects at this side
        assert not caplog.records
        elsewhere = SimpleNamespace(  # e.g. before an upgrade
            side=finder.encoder.side + 32, scoring_basis=finder.encoder.scoring_basis
        )
        ObjectFinder(elsewhere, finder.index)
    assert "snapfind index build --objects" in caplog.text


def test_indexed_crops_leave_a_room_photo_as_it_is_without_them(
    finder: ObjectFinder, lite0_extractor, tmp_path: Path
) -> None:
    """Crops (`index build --views`) match boxes as parts of products and shifted the
    pseudo-rooms' draw: a views index once found other first objects (docs/objects.md)."""
    catalog = finder.index.manifest.catalog
    options = BuildOptions(progress=False, objects=True, views=2)
    build_index(Path(catalog), tmp_path / "crops", lite0_extractor, options)
    crops = open_index(tmp_path / "crops", lite0_extractor.fingerprint)
    assert crops.vectors == 3 * crops.pictures == 3 * finder.index.vectors
    side = finder.encoder.side
    hubness = crops.region_hubness(side)
    assert hubness is not None and hubness.shape == (crops.pictures,)
    np.testing.assert_allclose(hubness, finder.index.region_hubness(side), atol=1e-5)

    image, _ = compose_room(("sofa", "lamp", "rug", "plant"))
    found = ObjectFinder(finder.encoder, crops).find(image, k=2)
    expected = finder.find(image, k=2)
    assert [o.box for o in found] == [o.box for o in expected]
    assert [[h.product.id for h in o.hits] for o in found] == [
        [h.product.id for h in o.hits] for o in expected
    ]
