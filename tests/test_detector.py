"""The shipped SSD detector and the first object it picks: a real IKEA chair pasted in a
synthetic room (skipped where ../shared is absent), real Lite0 features."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.build import BuildOptions, build_index
from retrieval.detector import MODEL, SIDE, Detections, Detector, _decode, anchors
from retrieval.index_store import CatalogIndex, open_index
from retrieval.object_options import ObjectOptions
from retrieval.objects import LEAD_SCORE, ObjectFinder
from retrieval.regions import Box, RegionEncoder, cells_of, region_encoder_for
from retrieval.search import SearchService
from tests.synthetic import compose_room, draw_furniture

IKEA = Path(__file__).parents[1].parent / "shared/data/ikea"
CHAIRS = ("802.017.40", "502.675.58", "490.912.49")  # SUNDVIK, MAMMUT, JULES: the first is pasted
SPOT = (420, 200)  # where the chair goes in compose_room's 720×540 room
needs_ikea = pytest.mark.skipif(
    not (IKEA / "catalog.csv").is_file(), reason=f"IKEA catalog not found at {IKEA}"
)


def _chair_photos() -> dict[str, Image.Image]:
    with (IKEA / "catalog.csv").open(newline="", encoding="utf-8") as handle:
        paths = {row["id"]: row["image"] for row in csv.DictReader(handle)}
    return {pid: Image.open(IKEA / paths[pid]).convert("RGB") for pid in CHAIRS}


def _room_with(chair: Image.Image) -> tuple[np.ndarray, Box]:
    """The synthetic sofa-and-lamp room with `chair` pasted (white cut out); its pixel box."""
    room, _ = compose_room(("sofa", "lamp"))
    canvas = Image.fromarray(room)
    chair = chair.copy()
    chair.thumbnail((240, 240))
    opaque = np.asarray(chair).min(axis=2) < 235
    canvas.paste(chair, SPOT, Image.fromarray(opaque.astype(np.uint8) * 255))
    rows, cols = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    x, y = SPOT
    return np.asarray(canvas), Box(x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1)


def test_the_shipped_model_is_the_one_its_notice_names() -> None:
    notice = (MODEL.parent / "NOTICE").read_text(encoding="utf-8")
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() in notice


def test_anchors_and_a_zero_encoding_decode_to_the_anchor_itself() -> None:
    table = anchors()
    assert table.shape == (1917, 4)  # the model's box count: 19²·3 + (10² + 5² + 3² + 2² + 1)·6
    centre = table[0]  # first cell of the finest layer: a 0.1 square at (0.5, 0.5) / 19
    assert np.allclose(centre, [0.5 / 19, 0.5 / 19, 0.1, 0.1])
    box = _decode(np.zeros((1, 4), np.float32), table[1000:1001])[0]
    x, y, w, h = table[1000]
    assert np.allclose(box, np.clip([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 0, 1))


def test_a_box_in_fractions_becomes_the_cells_that_cover_it() -> None:
    cells = cells_of(np.array([[0.0, 0.0, 1.0, 1.0], [0.52, 0.3, 0.53, 0.31]]), (8, 10))
    assert cells.tolist() == [[0, 0, 10, 8], [5, 2, 6, 3]]  # a sliver still gets one cell


def test_drawn_furniture_on_a_wall_is_no_chair_or_table() -> None:
    room, _ = compose_room(("sofa", "rug", "plant"))
    assert Detector(threads=1).detect(room).labels == []
    assert SIDE == 300


@needs_ikea
def test_the_detector_finds_a_chair_pasted_in_a_room() -> None:
    room, truth = _room_with(_chair_photos()[CHAIRS[0]])
    found = Detector(threads=1).detect(room)
    assert found.labels and found.labels[0] == "Chair"
    height, width = room.shape[:2]
    box = Box(*(found.boxes[0] * [width, height, width, height]).round().astype(int))
    assert box.iou(truth) >= 0.5, (box, truth)


@pytest.fixture(scope="module")
def chair_index(tmp_path_factory: pytest.TempPathFactory, lite0_extractor) -> CatalogIndex:
    """Drawn sofa and lamp, and three IKEA chairs, as a catalog (real Lite0 vectors)."""
    root = tmp_path_factory.mktemp("chairs")
    for kind in ("sofa", "lamp"):
        (root / "catalog" / kind).mkdir(parents=True)
        draw_furniture(kind).save(root / "catalog" / kind / f"{kind}.jpg", quality=95)
    (root / "catalog" / "chair").mkdir()
    for pid, photo in _chair_photos().items():
        photo.save(root / "catalog" / "chair" / f"{pid}.jpg", quality=95)
    options = BuildOptions(progress=False, objects=True)  # the room references
    build_index(root / "catalog", root / "index", lite0_extractor, options)
    return open_index(root / "index", lite0_extractor.fingerprint)


@needs_ikea
def test_the_detected_chair_is_the_first_object_and_finds_its_product(
    chair_index: CatalogIndex, lite0_extractor
) -> None:
    encoder, detector = region_encoder_for(lite0_extractor), Detector(threads=1)
    finder = ObjectFinder(encoder, chair_index, detector=detector)
    room, truth = _room_with(_chair_photos()[CHAIRS[0]])

    found = finder.find(room, k=3)

    first = found[0]
    assert first.label == "chair" and first.box.iou(truth) >= 0.5
    assert first.hits[0].product.id.endswith(CHAIRS[0])
    cut = room[first.box.top : first.box.bottom, first.box.left : first.box.right]
    assert np.allclose(first.vector, lite0_extractor.embed_one(cut), atol=1e-5)  # alone
    assert any(o.hits[0].product.id.endswith("sofa") for o in found[1:])  # the map's still


@needs_ikea
def test_the_detected_chair_is_cut_out_of_the_photo_decoded_larger(
    chair_index: CatalogIndex, lite0_extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the photo decoded larger (`sharp`), the detector still looks at the searched
    pixels, but its chair is cut out of the larger decode: the same box there, scaled; the
    box reported stays in the searched pixels."""
    room, truth = _room_with(_chair_photos()[CHAIRS[0]])
    small = np.asarray(Image.fromarray(room).resize((360, 270), Image.Resampling.LANCZOS))
    cuts: list[tuple[tuple[int, ...], list[Box]]] = []
    cut_out = RegionEncoder.cut_out

    def spied(self: RegionEncoder, source: np.ndarray, boxes: list[Box]) -> np.ndarray:
        cuts.append((source.shape[:2], boxes))
        return cut_out(self, source, boxes)

    monkeypatch.setattr(RegionEncoder, "cut_out", spied)
    finder = ObjectFinder(region_encoder_for(lite0_extractor), chair_index, detector=Detector(1))

    first = finder.find(small, k=3, sharp=lambda: room)[0]

    [(shape, [large])] = cuts
    assert shape == room.shape[:2] and first.label == "chair"
    assert first.box.iou(Box(*(v // 2 for v in truth.as_tuple()))) >= 0.5
    doubled = [2 * v for v in first.box.as_tuple()]
    assert np.abs(np.subtract(large.as_tuple(), doubled)).max() <= 1  # rounding only
    assert first.hits[0].product.id.endswith(CHAIRS[0])


class _Found:
    """A detector that finds one `label`, at `box` (fractions) and `score`."""

    def __init__(self, box: np.ndarray, score: float, label: str = "Chair") -> None:
        self.found = Detections(box[None].astype(np.float32), np.float32([score]), [label])

    def detect(self, image: np.ndarray) -> Detections:
        return self.found


@needs_ikea
def test_a_detection_leads_only_when_sure_and_of_the_kind_the_photo_shows(
    chair_index: CatalogIndex, lite0_extractor
) -> None:
    """Below LEAD_SCORE, or of another kind than the photo reads as where one of the map's
    boxes shows that kind, the detector's box was the wrong piece more often: object 1 is
    then the one found without a detector."""
    room, truth = _room_with(_chair_photos()[CHAIRS[0]])
    height, width = room.shape[:2]
    fractions = np.divide(truth.as_tuple(), [width, height, width, height])
    encoder = region_encoder_for(lite0_extractor)

    def first(detector: _Found | None, kind: str = "") -> tuple[Box, np.ndarray]:
        finder = ObjectFinder(encoder, chair_index, detector=detector, cut_outs=1)
        found = finder.find(room, 3, kind=kind)
        return found[0].box, found[0].vector

    sure, unsure = _Found(fractions, LEAD_SCORE), _Found(fractions, LEAD_SCORE - 0.01)
    table = _Found(fractions, LEAD_SCORE, "Table")  # every map box here reads as a chair
    without, chair = first(None), first(None, "chair")
    not_sure, other_kind = first(unsure), first(table, "chair")

    assert first(sure)[0] == first(sure, "chair")[0] == first(table)[0] == truth != without[0]
    assert not_sure[0] == without[0] and np.allclose(not_sure[1], without[1])
    assert other_kind[0] == chair[0] and np.allclose(other_kind[1], chair[1])


@needs_ikea
def test_the_service_uses_the_detector_only_when_asked(
    chair_index: CatalogIndex, lite0_extractor
) -> None:
    room, truth = _room_with(_chair_photos()[CHAIRS[0]])
    service = SearchService(lite0_extractor, chair_index, objects=ObjectOptions(detect=True))
    asked = service.search_objects(room)
    assert asked.objects[0].label == "chair" and Box(*asked.objects[0].box).iou(truth) >= 0.5
    plain = SearchService(lite0_extractor, chair_index)
    plain.search_objects(room)
    assert plain._objects._detector is None  # off by default: no detector built
