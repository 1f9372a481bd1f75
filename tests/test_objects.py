"""Objects in a room photo: regions, boxes, labels — synthetic rooms, real Lite0 features."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from index.build import BuildOptions, build_index
from retrieval.index_store import open_index
from retrieval.objects import ObjectFinder, looks_like_product_photo
from retrieval.regions import Box, RegionEncoder, _boxes, non_max_suppression
from retrieval.search import SearchService

SIDE = 240  # a product photo's side; objects are pasted at this size into a 720×540 room


def _product(kind: str) -> Image.Image:
    """A catalog-like photo: one distinct, textured object on white."""
    rng = np.random.default_rng(len(kind))
    image = Image.new("RGB", (SIDE, SIDE), "white")
    draw = ImageDraw.Draw(image)
    if kind == "sofa":  # red body with darker cushions
        draw.rectangle((20, 80, 220, 190), fill=(180, 30, 40))
        for x in (30, 95, 160):
            draw.rectangle((x, 90, x + 55, 140), fill=(120, 10, 20))
    elif kind == "lamp":  # yellow shade on a black stem
        draw.polygon([(80, 30), (160, 30), (190, 110), (50, 110)], fill=(240, 200, 40))
        draw.rectangle((114, 110, 126, 210), fill=(20, 20, 20))
        draw.rectangle((80, 205, 160, 220), fill=(20, 20, 20))
    elif kind == "rug":  # blue and white checkerboard
        for i in range(8):
            for j in range(8):
                colour = (30, 60, 170) if (i + j) % 2 else (200, 210, 240)
                draw.rectangle((24 + 24 * i, 24 + 24 * j, 48 + 24 * i, 48 + 24 * j), fill=colour)
    else:  # plant: a green, speckled bush in a brown pot
        leaves = rng.integers(0, 60, size=(SIDE, SIDE, 1)) + np.array([[[20, 120, 30]]])
        mask = Image.new("L", (SIDE, SIDE))
        ImageDraw.Draw(mask).ellipse((40, 20, 200, 160), fill=255)
        image.paste(Image.fromarray(leaves.astype(np.uint8)), (0, 0), mask)
        draw.rectangle((85, 150, 155, 220), fill=(120, 70, 30))
    return image


KINDS = ("sofa", "lamp", "rug", "plant")


def _room(kinds: tuple[str, ...]) -> tuple[np.ndarray, dict[str, Box]]:
    """A plain wall-and-floor room with the products pasted side by side (white cut out)."""
    rng = np.random.default_rng(7)
    room = np.zeros((540, 720, 3), np.float32)
    room[:330] = (205, 195, 175)  # wall
    room[330:] = (150, 110, 80)  # wooden floor
    room += rng.normal(0, 6, room.shape)
    canvas = Image.fromarray(np.clip(room, 0, 255).astype(np.uint8))
    boxes = {}
    spots = [(20, 150), (250, 40), (480, 270), (260, 290)]
    for kind, (x, y) in zip(kinds, spots, strict=False):
        product = _product(kind)
        opaque = (np.asarray(product).min(axis=2) < 235).astype(np.uint8) * 255
        canvas.paste(product, (x, y), Image.fromarray(opaque))
        boxes[kind] = Box(x, y, x + SIDE, y + SIDE)
    return np.asarray(canvas), boxes


def _centre_inside(inner: Box, outer: Box) -> bool:
    x, y = (inner.left + inner.right) / 2, (inner.top + inner.bottom) / 2
    return outer.left <= x < outer.right and outer.top <= y < outer.bottom


@pytest.fixture(scope="module")
def finder(tmp_path_factory: pytest.TempPathFactory, lite0_extractor) -> ObjectFinder:
    root = tmp_path_factory.mktemp("objects")
    for kind in KINDS:
        folder = root / "catalog" / kind
        folder.mkdir(parents=True)
        _product(kind).save(folder / f"{kind}.jpg", quality=95)
    build_index(root / "catalog", root / "index", lite0_extractor, BuildOptions(progress=False))
    index = open_index(root / "index", lite0_extractor.fingerprint)
    return ObjectFinder(RegionEncoder(lite0_extractor), index)


@pytest.mark.parametrize("kinds", [("sofa", "lamp"), ("sofa", "lamp", "rug", "plant")])
def test_each_object_of_a_room_is_found_with_its_product(finder: ObjectFinder, kinds) -> None:
    image, truth = _room(kinds)
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
    photo = np.asarray(_product("lamp"))
    assert looks_like_product_photo(photo)
    assert finder.find(photo) == []
    hits = SearchService(lite0_extractor, finder.index).search_image(photo, k=1).hits
    assert hits[0].product.id.endswith("lamp")  # today's whole-photo search, unchanged


def test_a_room_is_not_a_product_photo() -> None:
    image, _ = _room(("sofa",))
    assert not looks_like_product_photo(image)


def test_boxes_respect_size_and_aspect() -> None:
    boxes = _boxes(8, 10, 2)
    sides = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    assert sides.min() >= 2
    assert (sides.max(axis=1) <= 2.5 * sides.min(axis=1)).all()
    assert [0, 0, 10, 8] in boxes.tolist()  # the whole photo is a candidate too


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = [Box(0, 0, 10, 10), Box(1, 1, 11, 11), Box(20, 20, 30, 30)]
    assert non_max_suppression(boxes, np.array([0.5, 0.9, 0.1]), 0.3, 5) == [1, 2]
    assert non_max_suppression(boxes, np.array([0.5, 0.9, 0.1]), 0.3, 1) == [1]
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_product_photo_detection_needs_a_white_border(tmp_path: Path) -> None:
    grey = np.full((100, 100, 3), 128, np.uint8)
    framed = np.full((100, 100, 3), 255, np.uint8)
    framed[20:80, 20:80] = 40
    assert not looks_like_product_photo(grey)
    assert looks_like_product_photo(framed)
