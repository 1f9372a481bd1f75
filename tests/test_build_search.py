"""Build → publish → open → search, incremental rebuilds, crashes and refused indexes."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import index.build as build_module
from index.build import BuildOptions, build_index
from index.choice import IndexChoice
from retrieval.errors import IndexMismatchError, IndexNotFoundError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.index_store import open_index
from retrieval.results import Page
from retrieval.search import SearchService
from tests.synthetic import draw_item, jpeg_bytes, write_shapes_catalog

QUIET = BuildOptions(progress=False, batch_size=4)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write_shapes_catalog(tmp_path / "catalog", per_category=4)


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field")
PHOTOS += ("immunohistochemistry", "colorwheel", "brick", "grass", "gravel", "coins", "moon")


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory: pytest.TempPathFactory, lite0_extractor: Extractor) -> Path:
    """Real photographs (scikit-image's samples), one product each, indexed with real weights."""
    skimage_data = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("photos")
    (root / "catalog" / "photos").mkdir(parents=True)
    for name in PHOTOS:
        Image.fromarray(getattr(skimage_data, name)()).save(
            root / "catalog" / "photos" / f"{name}.png"
        )
    build_index(root / "catalog", root / "index", lite0_extractor, QUIET)
    return root


def test_build_publishes_a_release_that_searches(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    report = build_index(catalog, tmp_path / "idx", tiny_extractor, QUIET)
    assert (report.products, report.vectors, report.embedded, report.reused) == (12, 12, 12, 0)
    assert (tmp_path / "idx" / "current").is_symlink()
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    assert len(index) == 12 and index.categories() == ["circles", "squares", "triangles"]
    assert index.manifest.model_name == "efficientnetb0"
    query = (catalog / "shop" / "squares" / "squares-2.jpg").read_bytes()
    hits = SearchService(tiny_extractor, index).search_bytes(query).hits
    assert hits[0].product.id == "shop/squares/squares-2"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_multi_label_product_appears_once_with_both_labels(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    build_index(catalog, tmp_path / "idx", tiny_extractor, QUIET)
    index = open_index(tmp_path / "idx")
    vector = index.vector_of("shop/circles/circles-0")
    hits = index.search(vector, Page(12))
    assert len(hits) == 12 and len({h.product.id for h in hits}) == 12
    assert hits[0].product.categories == ("circles", "squares")
    squares = index.search(vector, Page(20, "Squares"))  # case-insensitive filter
    assert {h.product.id for h in squares} == {f"shop/squares/squares-{n}" for n in range(4)} | {
        "shop/circles/circles-0"
    }
    assert index.search(vector, Page(5, "sofas")) == []
    others = index.search(vector, Page(3, exclude=("shop/circles/circles-0",)))
    assert "shop/circles/circles-0" not in {h.product.id for h in others} and len(others) == 3


def test_product_with_several_images_collapses_to_its_best(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    for n in range(3):
        draw_item("circles", 40 + n).save(tmp_path / f"c{n}.jpg")
    draw_item("squares", 50).save(tmp_path / "s.jpg")
    (tmp_path / "c.csv").write_text(
        "id,title,categories,image\nlamp,Lamp,lamps,c0.jpg\nlamp,Lamp,lamps,c1.jpg\n"
        "lamp,Lamp,lamps,c2.jpg\nbox,Box,boxes,s.jpg\n"
    )
    report = build_index(tmp_path / "c.csv", tmp_path / "idx", tiny_extractor, QUIET)
    assert (report.products, report.vectors) == (2, 4)
    index = open_index(tmp_path / "idx")
    service = SearchService(tiny_extractor, index)
    hits = service.search_bytes((tmp_path / "c1.jpg").read_bytes()).hits
    assert [h.product.id for h in hits] == ["lamp", "box"]  # k beyond the catalog: no -1 ids
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_incremental_rebuild_embeds_only_what_changed(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    out = tmp_path / "idx"
    build_index(catalog, out, tiny_extractor, QUIET)
    again = build_index(catalog, out, tiny_extractor, QUIET)
    assert (again.embedded, again.reused) == (0, 12)
    draw_item("triangles", 999).save(catalog / "shop" / "triangles" / "new.jpg")
    (catalog / "shop" / "squares" / "squares-3.jpg").unlink()
    changed = build_index(catalog, out, tiny_extractor, QUIET)
    assert (changed.embedded, changed.products) == (1, 12)
    ids = {
        h.product.id
        for h in open_index(out).search(np.ones(1280, np.float32) / 1280**0.5, Page(50))
    }
    assert "shop/triangles/new" in ids and "shop/squares/squares-3" not in ids
    full = build_index(catalog, out, tiny_extractor, BuildOptions(full=True, progress=False))
    assert (full.embedded, full.reused) == (12, 0)
    assert len(list((out / "releases").iterdir())) == 3  # older releases pruned


def test_unreadable_images_are_listed_and_skipped(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    (catalog / "shop" / "circles" / "broken.jpg").write_bytes(b"not a jpeg at all")
    data = jpeg_bytes(Image.effect_noise((64, 64), 50).convert("RGB"))
    (catalog / "shop" / "circles" / "truncated.jpg").write_bytes(data[: len(data) // 3])
    report = build_index(catalog, tmp_path / "idx", tiny_extractor, QUIET)
    assert (report.unreadable, report.products) == (2, 12)
    listed = (report.release / "unreadable.tsv").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == [
        "broken.jpg",
        "truncated.jpg",
    ]


def test_crash_mid_build_keeps_the_old_index_serving_and_resumes(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "idx"
    first = build_index(catalog, out, tiny_extractor, QUIET)
    for n in range(8):
        draw_item("circles", 500 + n).save(catalog / "shop" / "circles" / f"extra-{n}.jpg")
    calls = {"n": 0}
    real_embed = tiny_extractor.embed_prepared

    def embed_then_die(batch: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C after one batch of four
        return real_embed(batch)

    monkeypatch.setattr(tiny_extractor, "embed_prepared", embed_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_index(catalog, out, tiny_extractor, QUIET)
    monkeypatch.undo()
    still = open_index(out, tiny_extractor.fingerprint)
    assert still.release == first.release and len(still) == 12
    assert still.search(still.vector_of("shop/circles/circles-1"), Page(1))[0].product.id == (
        "shop/circles/circles-1"
    )
    resumed = build_index(catalog, out, tiny_extractor, QUIET)
    assert (resumed.embedded, resumed.reused, resumed.products) == (4, 16, 20)
    assert not [p for p in (out / "releases").iterdir() if p.name.startswith(".")]


def test_index_of_another_extractor_is_refused(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    build_index(catalog, tmp_path / "idx", tiny_extractor, QUIET)
    other = Fingerprint("efficientnetb7", "imagenet", 600, 2560)
    with pytest.raises(IndexMismatchError) as caught:
        open_index(tmp_path / "idx", other)
    message = str(caught.value)
    assert "backbone 'efficientnetb0' (index) vs 'efficientnetb7'" in message
    assert "input_size 64 (index) vs 600" in message and "snapfind index build" in message
    with pytest.raises(IndexNotFoundError, match="snapfind index build"):
        open_index(tmp_path / "nothing-here")


def test_approximate_index_loads_with_its_probes(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        build_module, "choose_index", lambda n, d, b: IndexChoice("IVF4,Flat", 4, 0)
    )
    build_index(catalog, tmp_path / "idx", tiny_extractor, QUIET)
    index = open_index(tmp_path / "idx")
    assert index.manifest.index_key == "IVF4,Flat" and index.manifest.nprobe == 4
    vector = index.vector_of("shop/triangles/triangles-1")
    assert index.search(vector, Page(1))[0].product.id == "shop/triangles/triangles-1"
    assert index.search(vector, Page(2, "circles"))[0].product.categories[0] == "circles"


def test_reload_swaps_to_the_new_release(
    catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    out = tmp_path / "idx"
    build_index(catalog, out, tiny_extractor, QUIET)
    service = SearchService(tiny_extractor, open_index(out), out)
    old = service.index
    shutil.rmtree(catalog / "shop" / "triangles")
    build_index(catalog, out, tiny_extractor, QUIET)
    info = service.reload()
    fresh = service.index
    assert fresh is not old and info.products == len(fresh) == 8 and len(old) == 12
    assert old.search(old.vector_of("shop/triangles/triangles-0"), Page(1))  # still usable


def edited(path: Path) -> bytes:
    """The same product photographed again: cropped, shrunk and re-encoded."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    image = image.crop((4, 2, w - 3, h - 5)).resize((w * 3 // 4, h * 3 // 4))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


def test_near_duplicate_finds_its_product_first_with_real_weights(
    photo_index: Path, lite0_extractor: Extractor
) -> None:
    index = open_index(photo_index / "index", lite0_extractor.fingerprint)
    service = SearchService(lite0_extractor, index)
    for name in PHOTOS:
        hits = service.search_bytes(edited(photo_index / "catalog" / "photos" / f"{name}.png")).hits
        assert hits[0].product.id == f"photos/{name}", [h.product.id for h in hits]
        assert hits[0].score > 0.85 > hits[1].score + 0.05
