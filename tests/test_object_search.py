"""`search_objects` on the query API: a synthetic room against a real Lite0 index, and the CLI.

The rooms are tests/synthetic.py's drawn furniture pasted on a wall and floor; the index holds
the same drawings as catalog photos, so each object's own product must come first.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.build import BuildOptions, build_index
from retrieval import object_search
from retrieval.index_store import open_index
from retrieval.results import FoundObject
from retrieval.search import SearchService
from snapfind.cli import main
from tests.synthetic import FURNITURE, compose_room, draw_furniture


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, lite0_extractor) -> Path:
    root = tmp_path_factory.mktemp("object-search")
    for kind in FURNITURE:
        folder = root / "catalog" / kind
        folder.mkdir(parents=True)
        draw_furniture(kind).save(folder / f"{kind}.jpg", quality=95)
    build_index(root / "catalog", root / "index", lite0_extractor, BuildOptions(progress=False))
    return root / "index"


@pytest.fixture
def service(index_dir: Path, lite0_extractor) -> SearchService:
    index = open_index(index_dir, lite0_extractor.fingerprint)
    return SearchService(lite0_extractor, index, index_dir)


def _over(found: FoundObject, truth) -> bool:
    left, top, right, bottom = found.box
    x, y = (left + right) / 2, (top + bottom) / 2
    return truth.left <= x < truth.right and truth.top <= y < truth.bottom


def test_a_room_is_searched_whole_and_object_by_object(service: SearchService) -> None:
    image, truth = compose_room(("sofa", "lamp", "rug"))
    result = service.search_objects(image, k=2)

    plain = service.search_image(image, k=2)
    assert [h.product.id for h in result.whole.hits] == [h.product.id for h in plain.hits]
    assert np.allclose(result.whole.vector, plain.vector, atol=1e-5)
    assert {"extract", "search", "objects"} <= set(result.timings)
    assert 2 <= len(result.objects) <= 5
    height, width = image.shape[:2]
    for found in result.objects:
        left, top, right, bottom = found.box
        assert all(isinstance(v, int) for v in found.box)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        assert found.result.vector.shape == (1280,) and len(found.result.hits) <= 2
    for kind, box in truth.items():
        over = [o for o in result.objects if _over(o, box)]
        assert over, f"no object over the {kind}: {[o.box for o in result.objects]}"
        assert over[0].result.hits[0].product.id.endswith(kind) and over[0].label == kind


def test_a_product_photo_costs_a_plain_search_and_a_reload_gets_a_new_finder(
    service: SearchService,
) -> None:
    photo = np.asarray(draw_furniture("lamp"))
    result = service.search_objects(photo, k=1)
    assert result.objects == [] and result.whole.hits[0].product.id.endswith("lamp")
    assert service._objects._encoder is None  # no region network was even built

    room, _ = compose_room(("sofa", "plant"))
    service.search_objects(room)
    first, encoder = service._objects._finder, service._objects._encoder
    assert first is not None and first.index is service.index
    service.reload()  # the same release opened again: a new index object to score against
    assert service.search_objects(room).objects
    assert service._objects._finder is not first and service._objects._finder.index is service.index
    assert service._objects._encoder is encoder  # the network is the extractor's: kept


def test_without_tensorflow_for_the_region_pass_photos_are_searched_whole(
    index_dir: Path,
    lite0_extractor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_tensorflow(extractor) -> None:
        raise ImportError("No module named 'tensorflow'")

    monkeypatch.setattr(object_search, "_region_encoder", no_tensorflow)
    service = SearchService(lite0_extractor, open_index(index_dir, lite0_extractor.fingerprint))
    room, _ = compose_room(("sofa", "lamp"))
    for _ in range(2):
        result = service.search_objects(room, k=2)
        assert result.objects == []
        assert result.whole.hits == service.search_image(room, k=2).hits
    warned = [r for r in caplog.records if "object search is off" in r.getMessage()]
    assert len(warned) == 1 and "tensorflow" in warned[0].getMessage()


def test_the_cli_objects_json_goes_through_the_query_api(
    index_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image, truth = compose_room(("sofa", "lamp"))
    photo = tmp_path / "room.jpg"
    Image.fromarray(image).save(photo, quality=95)
    asked: list[int] = []
    original = SearchService.search_objects

    def counted(self: SearchService, image: np.ndarray, k: int = 5):
        asked.append(k)
        return original(self, image, k)

    monkeypatch.setattr(SearchService, "search_objects", counted)
    sheet = tmp_path / "sheet.png"
    args = ["search", str(photo), "--index", str(index_dir), "--objects", "--json", "-k", "2"]
    code = main([*args, "--sheet", str(sheet)])
    out = capsys.readouterr().out
    assert code == 0 and asked == [2]
    [line] = out.splitlines()
    answer = json.loads(line)
    assert answer["photo"] == str(photo) and len(answer["results"]) == 2
    objects = answer["objects"]
    assert len(objects) >= 2
    for found in objects:
        assert len(found["box"]) == 4 and found["label"] in FURNITURE
        assert [r["rank"] for r in found["results"]] == [1, 2]
    sofa = truth["sofa"]
    over = [o for o in objects if sofa.left <= (o["box"][0] + o["box"][2]) / 2 < sofa.right]
    assert over and over[0]["results"][0]["id"].endswith("sofa")
    with Image.open(sheet) as drawn:
        assert drawn.height >= len(objects) * 160  # one row per object
