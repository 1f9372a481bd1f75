"""The room probe: learnt by `index build --objects` from the catalog's own pictures, it decides
whether a photo not on white gets boxes (a room) or its whole-photo album (one piece)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.pseudo_rooms import CatalogPictures
from index.room_probe_training import fit_logistic, furnished_pieces
from retrieval.errors import IndexDamagedError
from retrieval.index_store import open_index
from retrieval.manifest import MANIFEST, room_probe_file, whole_probe_file
from retrieval.regions import region_encoder_for
from retrieval.results import Page
from retrieval.room_probe import RoomProbe
from retrieval.search import SearchService
from tests.synthetic import FURNITURE, compose_room, draw_furniture


def test_the_fit_separates_two_kinds_of_vectors_it_has_not_seen() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2, 64))  # of the two kinds, on very different scales per feature
    scale = np.geomspace(0.01, 10, 64)

    def drawn(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 2, count)
        return (centres[labels] + rng.normal(size=(count, 64))) * scale, labels

    features, labels = drawn(200)
    probe = RoomProbe.from_array(fit_logistic(features, labels.astype(float)))
    assert probe.weights.shape == (64,) and probe.weights.dtype == np.float32
    unseen, truth = drawn(400)
    called = np.array([probe.shows_room(v) for v in unseen])
    assert (called == truth.astype(bool)).mean() > 0.95


def test_a_catalog_with_beds_and_nightstands_teaches_a_bed_between_them_as_one_piece() -> None:
    """The furnished views of a bed between its nightstands join the probe's one-piece class
    where the catalog has both, drawn reproducibly; a dining set (a table among chairs) stays a
    scene of several pieces, and a catalog without those categories gets none."""
    kinds = ("bed", "nightstand", "nightstand", "table", "chair")
    drawings = [
        np.asarray(draw_furniture(kind)) for kind in ("sofa", "lamp", "rug", "plant", "sofa")
    ]
    pictures = CatalogPictures(np.arange(5), drawings.__getitem__, kinds)

    def views(pictures: CatalogPictures) -> list[np.ndarray]:
        return list(furnished_pieces(pictures, 6, np.random.default_rng(4), seed=4))

    drawn = views(pictures)
    assert len(drawn) == 6  # the bed's scene only, not the table's
    first = drawn[0]
    assert first.ndim == 3 and first.shape[1] > first.shape[0]  # the product with company beside
    assert all(np.array_equal(a, b) for a, b in zip(drawn, views(pictures), strict=True))
    dining = ("table", "chair", "chair", "sofa", "sofa")
    assert views(CatalogPictures(np.arange(5), drawings.__getitem__, dining)) == []
    assert views(CatalogPictures(np.arange(5), drawings.__getitem__)) == []  # kinds unknown


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe-catalog")
    for kind in FURNITURE:
        (root / kind).mkdir()
        draw_furniture(kind).save(root / kind / f"{kind}.jpg", quality=95)
    return root


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, catalog: Path, lite0_extractor) -> Path:
    out = tmp_path_factory.mktemp("probe-index")
    build_index(catalog, out, lite0_extractor, BuildOptions(progress=False, objects=True))
    return out


def test_the_build_writes_a_probe_the_index_reads(
    index_dir: Path, catalog: Path, tmp_path: Path, lite0_extractor
) -> None:
    index = open_index(index_dir, lite0_extractor.fingerprint)
    side = region_encoder_for(lite0_extractor).side
    probe = index.room_probe(side)
    assert probe is not None and probe.weights.shape == (1280,)
    assert index.room_probe(side + 64) is None  # learnt at another region side: not read
    build_index(catalog, tmp_path / "plain", lite0_extractor, BuildOptions(progress=False))
    assert open_index(tmp_path / "plain").room_probe(side) is None  # built without --objects
    damaged = tmp_path / "damaged"
    build_index(catalog, damaged, lite0_extractor, BuildOptions(progress=False, objects=True))
    release = open_index(damaged).release
    for wrong in (np.zeros(7, np.float32), np.full(1281, np.nan, np.float32)):
        np.save(release / room_probe_file(side), wrong, allow_pickle=False)
        with pytest.raises(IndexDamagedError, match=room_probe_file(side)):
            open_index(damaged).room_probe(side)


def test_a_probe_from_before_the_scene_vector_is_read_only_without_a_head(
    index_dir: Path, tmp_path: Path, lite0_extractor
) -> None:
    """An index built before 2026-12-02 holds `room_probe_<side>.npy`, learnt on the whole-photo
    vector: the scene vector itself without a head, another space with one (rebuild then)."""
    side = region_encoder_for(lite0_extractor).side
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy, symlinks=True)
    release = open_index(copy).release
    (release / room_probe_file(side)).rename(release / whole_probe_file(side))
    assert open_index(copy).room_probe(side) is not None
    manifest = json.loads((release / MANIFEST).read_text())
    manifest["fingerprint"]["head"] = "sha256:0123456789abcdef"  # as `snapfind tune` leaves it
    (release / MANIFEST).write_text(json.dumps(manifest))
    assert open_index(copy).room_probe(side) is None


def test_a_room_gets_boxes_and_one_piece_in_a_room_its_whole_album(
    index_dir: Path, lite0_extractor
) -> None:
    """The probe the build learnt from six drawings: four of them on a floor are a room, one
    alone is a photo of that piece, answered as any photo was before objects."""
    service = SearchService(lite0_extractor, open_index(index_dir, lite0_extractor.fingerprint))
    room, _ = compose_room(("sofa", "lamp", "rug", "plant"))
    assert len(service.search_objects(room, k=2).objects) >= 2
    piece, _ = compose_room(("sofa",))
    result = service.search_objects(piece, k=2)
    assert result.objects == [] and result.timings["objects"] == 0.0
    regions = service._objects._encoder.regions(piece)
    assert result.whole.hits == service.index.search(regions.whole, Page(2))  # no second forward
    assert result.whole.hits[0].product.id.endswith("sofa")


def test_an_index_without_room_references_answers_every_photo_whole(
    index_dir: Path, tmp_path: Path, lite0_extractor, caplog: pytest.LogCaptureFixture
) -> None:
    """Built without `--objects` (or before the probe existed): no boxes for any photo, the
    query's own forward, and the log says how to get them."""
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy, symlinks=True)
    index = open_index(copy, lite0_extractor.fingerprint)
    (index.release / room_probe_file(region_encoder_for(lite0_extractor).side)).unlink()
    room, _ = compose_room(("sofa", "lamp", "rug", "plant"))
    service = SearchService(lite0_extractor, index)
    with caplog.at_level("WARNING", logger="retrieval.object_search"):
        result = service.search_objects(room, k=2)
    assert result.objects == [] and not service.objects_ready()
    assert result.whole.hits == service.search_image(room, Page(2)).hits
    assert "index build --objects" in caplog.text
