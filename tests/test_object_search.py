"""`search_objects` on the query API: a synthetic room against a real Lite0 index, and the CLI.

The rooms are tests/synthetic.py's drawn furniture pasted on a wall and floor; the index holds
the same drawings as catalog photos, so each object's own product must come first.
"""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from index.build import BuildOptions, build_index
from retrieval import object_search, search
from retrieval.errors import RuntimeModelError
from retrieval.index_store import open_index
from retrieval.regions import RegionEncoder
from retrieval.results import FoundObject, Page
from retrieval.search import SearchService
from snapfind.cli import main
from snapfind.commands import search_objects
from tests.synthetic import FURNITURE, compose_room, draw_furniture, jpeg_bytes
from tests.telegram_api import BotApiServer
from tests.telegram_api.harness import bot_settings, button, results, running_bot


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, lite0_extractor) -> Path:
    root = tmp_path_factory.mktemp("object-search")
    for kind in FURNITURE:
        folder = root / "catalog" / kind
        folder.mkdir(parents=True)
        draw_furniture(kind).save(folder / f"{kind}.jpg", quality=95)
    options = BuildOptions(progress=False, objects=True)  # the room references
    build_index(root / "catalog", root / "index", lite0_extractor, options)
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

    # one forward: the whole-photo vector is the region map's mean, close to the query's own
    plain = service.search_image(image, Page(2))
    regions = service._objects._encoder.regions(image)
    assert np.allclose(result.whole.vector, regions.whole, atol=1e-5)
    assert float(result.whole.vector @ plain.vector) > 0.8
    assert result.whole.hits == service.index.search(regions.whole, Page(2))
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


def test_a_rooms_first_object_is_cut_out_of_its_bytes_decoded_larger(
    service: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the bytes, object 1 is cut out of them decoded at twice the query side (the
    720×540 photo itself), not out of the 360×270 the product decodes; its box is the same
    box, still given in the searched pixels. A plain product photo never decodes them again."""
    room, _ = compose_room(("sofa", "lamp", "rug"))
    data = jpeg_bytes(Image.fromarray(room), quality=95)
    image = service.decode(data)
    cuts: list[tuple[tuple[int, ...], list]] = []
    cut_out = RegionEncoder.cut_out

    def spied(self: RegionEncoder, source: np.ndarray, boxes: list) -> np.ndarray:
        cuts.append((source.shape[:2], boxes))
        return cut_out(self, source, boxes)

    monkeypatch.setattr(RegionEncoder, "cut_out", spied)
    plain = service.search_objects(image, 2)
    sharp = service.search_objects(image, 2, data)
    [(small, [small_box]), (large, [large_box])] = cuts
    assert small == image.shape[:2] == (270, 360) and large == (540, 720)
    assert large_box.as_tuple() == tuple(2 * v for v in small_box.as_tuple())
    assert sharp.objects[0].box == plain.objects[0].box == small_box.as_tuple()
    assert not np.allclose(sharp.objects[0].result.vector, plain.objects[0].result.vector)

    decoded: list[int] = []
    decode = search.decode_for_model

    def counted(data: bytes, side: int, limits):
        decoded.append(side)
        return decode(data, side, limits)

    monkeypatch.setattr(search, "decode_for_model", counted)
    product = jpeg_bytes(draw_furniture("lamp"), quality=95)
    lamp = service.decode(product)
    assert decoded == [224]  # the product's own decode
    assert service.search_objects(lamp, 1, product).objects == [] and decoded == [224]

    png = io.BytesIO()
    Image.fromarray(room).save(png, format="PNG")  # decodes whole at any side: not again
    assert service.search_objects(service.decode(png.getvalue()), 2, png.getvalue()).objects
    assert decoded == [224, 224] and cuts[-1][0] == (270, 360)  # box-reduced by 2, cut out of it


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
    assert service.objects_ready()


def test_without_a_region_network_photos_are_searched_whole(
    index_dir: Path,
    lite0_extractor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def old_export(extractor) -> None:  # a runtime exported before its feature-map model
        raise RuntimeModelError("exported without its feature-map model; export again")

    monkeypatch.setattr(object_search, "region_encoder_for", old_export)
    service = SearchService(lite0_extractor, open_index(index_dir, lite0_extractor.fingerprint))
    room, _ = compose_room(("sofa", "lamp"))
    for _ in range(2):
        result = service.search_objects(room, k=2)
        assert result.objects == []
        assert result.whole.hits == service.search_image(room, Page(2)).hits
    assert not service.objects_ready()
    warned = [r for r in caplog.records if "object search is off" in r.getMessage()]
    assert len(warned) == 1 and "export again" in warned[0].getMessage()


def test_a_press_on_an_object_pages_the_finders_ranking_or_the_plain_one_without_it(
    index_dir: Path, lite0_extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SearchService(lite0_extractor, open_index(index_dir, lite0_extractor.fingerprint))
    room, _ = compose_room(("sofa", "lamp", "rug"))
    vector = service.search_objects(room, k=3).objects[0].result.vector
    finder = service._objects._finder
    assert finder is not None

    def ids(hits) -> list[str]:
        return [h.product.id for h in hits]

    pages = [ids(service.search_object_vector(vector, Page(2, offset=o))) for o in (0, 2)]
    assert pages[0] + pages[1] == ids(finder.rank(vector, Page(4)))  # the finder's ranking, paged
    only = service.search_object_vector(vector, Page(3, "lamp"))
    assert only and all(h.product.categories == ("lamp",) for h in only)

    def old_export(extractor) -> None:
        raise RuntimeModelError("exported without its feature-map model; export again")

    monkeypatch.setattr(object_search, "region_encoder_for", old_export)
    plain = SearchService(lite0_extractor, open_index(index_dir, lite0_extractor.fingerprint))
    assert ids(plain.search_object_vector(vector, Page(3))) == ids(
        plain.search_vector(vector, Page(3))
    )


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
    served: list = []  # what search_objects returned, and the size of the pixels it searched
    original = SearchService.search_objects

    def counted(self: SearchService, image: np.ndarray, k: int = 5, data: bytes | None = None):
        asked.append(k)
        served.append((original(self, image, k, data), image.shape[:2]))
        assert data == photo.read_bytes()  # the bot's call: its pixels and the bytes they came from
        assert np.array_equal(image, self.decode(data))
        return served[-1][0]

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
    # found in the draft-decoded 360×270 pixels, given in the photo's 720×540
    [(found, searched)] = served
    assert searched == (270, 360)
    assert [o["box"] for o in objects] == [[2 * v for v in o.box] for o in found.objects]
    sofa = truth["sofa"]
    over = [o for o in objects if sofa.left <= (o["box"][0] + o["box"][2]) / 2 < sofa.right]
    assert over and over[0]["results"][0]["id"].endswith("sofa")
    with Image.open(sheet) as drawn:
        assert drawn.height >= len(objects) * 160  # one row per object


def test_the_cli_category_filters_each_objects_products_in_text_json_and_sheet(
    index_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--category` reaches every object through `search_object_vector`, not only the whole
    photo's list (which the text does not even show for a room); without it, no extra search."""
    image, _ = compose_room(("sofa", "lamp"))
    photo = tmp_path / "room.jpg"
    Image.fromarray(image).save(photo, quality=95)
    pages: list[Page] = []
    original = SearchService.search_object_vector

    def spied(self: SearchService, vector: np.ndarray, page: Page, kind: str = ""):
        pages.append(page)
        return original(self, vector, page, kind)

    monkeypatch.setattr(SearchService, "search_object_vector", spied)
    drawn: list[list[FoundObject]] = []
    draw = search_objects.object_rows

    def spied_rows(photo: Path, image: np.ndarray, objects: list[FoundObject]):
        drawn.append(objects)
        return draw(photo, image, objects)

    monkeypatch.setattr(search_objects, "object_rows", spied_rows)
    base = ["search", str(photo), "--index", str(index_dir), "--objects", "-k", "2"]
    assert main(base) == 0 and pages == []  # no category: the objects' first lists, as found
    unfiltered = capsys.readouterr().out
    assert any("[sofa]" in line for line in unfiltered.splitlines())

    sheet = tmp_path / "sheet.png"
    assert main([*base, "--category", "lamp", "--sheet", str(sheet)]) == 0
    text = capsys.readouterr().out
    listed = [line for line in text.splitlines() if line.startswith("    ")]
    assert listed and all(line.endswith("[lamp]") for line in listed), text
    assert pages and {(p.k, p.category) for p in pages} == {(2, "lamp")}
    assert drawn and all(
        o.result.hits and all(h.product.categories == ("lamp",) for h in o.result.hits)
        for objects in drawn
        for o in objects
    )
    with Image.open(sheet) as picture:
        assert picture.width == 2 * 160  # the query tile and the one lamp: no sofa beside it

    assert main([*base, "--category", "lamp", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["objects"] and all(
        [r["categories"] for r in found["results"]] == [["lamp"]] for found in answer["objects"]
    )
    assert [r["categories"] for r in answer["results"]] == [["lamp"]]


def test_the_cli_objects_sheet_of_a_product_photo_is_its_whole_photo_sheet(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No objects to tell apart: `--objects --sheet` draws what `search --sheet` draws."""
    photo = tmp_path / "lamp.jpg"
    draw_furniture("lamp").save(photo, quality=95)
    sheets = {name: tmp_path / f"{name}.png" for name in ("objects", "plain")}
    base = ["search", str(photo), "--index", str(index_dir), "-k", "2"]
    assert main([*base, "--objects", "--sheet", str(sheets["objects"])]) == 0
    captured = capsys.readouterr()
    assert "no objects to tell apart" in captured.out
    assert f"contact sheet: {sheets['objects']}" in captured.err
    assert main([*base, "--sheet", str(sheets["plain"])]) == 0
    with Image.open(sheets["objects"]) as objects, Image.open(sheets["plain"]) as plain:
        assert objects.size == plain.size == (3 * 160, 160 + 34)  # the photo, then its two hits


async def test_the_real_bot_answers_a_room_and_a_tap_runs_no_network(
    server: BotApiServer,
    service: SearchService,
    index_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real service over the loopback Bot API: boxes, buttons, and taps from the cache."""
    passes: list[str] = []  # "w": the whole photo's forward pass, "r": the region pass
    embed, regions = service.extractor.embed_one, RegionEncoder.feature_map

    def whole_pass(image: np.ndarray) -> np.ndarray:
        passes.append("w")
        return embed(image)

    def region_pass(encoder: RegionEncoder, image: np.ndarray):
        passes.append("r")
        return regions(encoder, image)

    monkeypatch.setattr(service.extractor, "embed_one", whole_pass)
    monkeypatch.setattr(RegionEncoder, "feature_map", region_pass)
    image, _ = compose_room(("sofa", "lamp", "rug"))
    lite0 = {"backbone": "efficientnet-lite0", "weights": "imagenet", "input_size": 224}
    settings = bot_settings(server, index_dir, objects=True, **lite0)
    async with running_bot(settings, service):
        await server.send_photo(7, jpeg_bytes(Image.fromarray(image), quality=95))
        picture = await server.reply(7, "sendPhoto", timeout=120)
        first, _ = await results(server, 7, server.calls.index(picture), timeout=60)
        labels = [label for label, _ in picture.buttons()]
        assert len(labels) >= 3 and labels[-1] == "Whole photo"
        assert passes == ["r"]  # one forward pass: the region map gives the whole photo too
        mark = len(server.calls)
        await server.press(7, picture.result, button(picture, labels[1]))
        album, header = await results(server, 7, mark, timeout=60)
    assert header.params["text"].startswith(f"{labels[1]}: Matches 1–")
    assert album.captions()[0] != first.captions()[0]  # another object, another best product
    assert passes == ["r"] and server.count("getFile") == 1


def test_an_object_of_a_catch_all_category_is_named_by_its_products_type(
    tmp_path: Path, lite0_extractor
) -> None:
    """IKEA files half its catalog under `other`: a button "1 · other" tells a shopper
    nothing, so such an object reads as the `type` its products share (the CSV's column);
    a real kind keeps its name whatever the type says."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    rows = ["id,title,category,type,image"]
    for kind, category in (("sofa", "other"), ("lamp", "lamp"), ("rug", "rug")):
        drawn = draw_furniture(kind)
        smaller = ImageOps.pad(drawn.resize((200, 200)), drawn.size, color="white")
        for n, look in enumerate((drawn, ImageOps.mirror(drawn), smaller)):  # 3 products
            look.save(catalog / f"{kind}-{n}.jpg", quality=95)
            rows.append(
                f"{kind}-{n},{kind.upper()},{category},{kind.title()} with a view,{kind}-{n}.jpg"
            )
    (catalog / "catalog.csv").write_text("\n".join(rows) + "\n")
    options = BuildOptions(progress=False, objects=True)
    build_index(catalog / "catalog.csv", tmp_path / "index", lite0_extractor, options)
    index = open_index(tmp_path / "index", lite0_extractor.fingerprint)
    service = SearchService(lite0_extractor, index, tmp_path / "index")

    image, _ = compose_room(("sofa", "lamp", "rug"))
    found = service.search_objects(image, k=3).objects
    named = {o.result.hits[0].product.id.split("-")[0]: o.label for o in found[::-1]}
    assert named == {"sofa": "sofa with a view", "lamp": "lamp", "rug": "rug"}
