"""Region hubness: pseudo-rooms from the catalog, written by the build, read by the index."""

from pathlib import Path

import numpy as np
import pytest

from index import region_hubness as region_hubness_module
from index.build import BuildOptions, build_index
from index.pseudo_rooms import (
    MIN_ROOMS,
    ROOM_SIZE,
    CatalogPictures,
    Draw,
    PseudoRooms,
    compose_room,
    pseudo_rooms,
)
from index.region_hubness import region_hubness
from retrieval.errors import IndexDamagedError
from retrieval.feature_map import region_side
from retrieval.index_store import open_index
from retrieval.limits import DEFAULT_LIMITS
from retrieval.manifest import region_hubness_file
from retrieval.regions import region_encoder_for
from tests.synthetic import write_shapes_catalog


def test_a_vector_like_pieces_of_rooms_is_a_hub_unless_it_is_in_them() -> None:
    catalog = np.eye(4, 8, dtype=np.float32)  # four orthogonal unit vectors: two rooms are used
    regions = [np.repeat(catalog[:1], 25, axis=0), -np.repeat(catalog[1:2], 25, axis=0)]
    owners = np.array([0, 1, 2, 3])
    scenes = np.zeros((2, 8), np.float32)
    hubness = region_hubness([catalog], owners, PseudoRooms(regions, [set(), set()], scenes))
    np.testing.assert_allclose(hubness, [1.0, 0.0, 0.0, 0.0], atol=1e-6)  # 0 is like room 0's boxes
    pasted = [{0}, set()]  # 0 was pasted into room 0
    ignored = region_hubness([catalog], owners, PseudoRooms(regions, pasted, scenes))
    np.testing.assert_allclose(ignored, [0.0, 0.0, 0.0, 0.0], atol=1e-6)


def test_the_hubness_of_a_catalog_read_in_chunks_is_that_of_the_whole_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The build streams the pictures' vectors from its cache: chunks of any size, across
    blocks, give the same hubness as one matrix, each vector with its own product's rooms."""
    monkeypatch.setattr(region_hubness_module, "BLOCK", 3)
    rng = np.random.default_rng(2)
    catalog = rng.normal(size=(11, 8)).astype(np.float32)
    owners = np.arange(11) // 2  # two pictures a product
    regions = [rng.normal(size=(7, 8)).astype(np.float32) for _ in range(4)]
    rooms = PseudoRooms(regions, [{0, 3}, {1}, set(), {4, 5}], np.zeros((4, 8), np.float32))
    whole = region_hubness([catalog], owners, rooms)
    chunked = region_hubness(iter([catalog[:4], catalog[4:5], catalog[5:]]), owners, rooms)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)  # BLAS rounds by block shape
    with pytest.raises(ValueError, match="10 vectors for 11 pictures"):
        region_hubness([catalog[:10]], owners, rooms)


def test_pseudo_room_pastes_only_what_is_not_white() -> None:
    white = np.full((100, 100, 3), 255, np.uint8)
    piece = white.copy()
    piece[30:70, 30:70] = (200, 20, 20)
    room = compose_room([white, piece], np.random.default_rng(1))
    assert room.shape == (ROOM_SIZE[1], ROOM_SIZE[0], 3)
    colours = {tuple(c) for c in room.reshape(-1, 3)}
    assert (255, 255, 255) not in colours  # the white backdrops were cut away
    assert (200, 20, 20) in colours  # the piece itself was pasted


def test_build_with_objects_writes_what_the_index_reads(tmp_path: Path, tiny_extractor) -> None:
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    side = region_side(tiny_extractor.input_size)
    name = region_hubness_file(side)
    plain = build_index(catalog, tmp_path / "plain", tiny_extractor, BuildOptions(progress=False))
    assert open_index(tmp_path / "plain").region_hubness(side) is None
    assert not (plain.release / name).exists()
    options = BuildOptions(progress=False, objects=True)
    report = build_index(catalog, tmp_path / "objects", tiny_extractor, options)
    index = open_index(tmp_path / "objects")
    hubness = index.region_hubness(side)
    assert hubness is not None and hubness.shape == (index.vectors,)
    assert np.isfinite(hubness).all() and np.abs(hubness).max() <= 1.0
    assert index.region_hubness(side + 64) is None  # measured at another region side: not read
    (report.release / name).write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(IndexDamagedError, match=name):
        open_index(tmp_path / "objects").region_hubness(side)
    (report.release / name).write_bytes(b"")  # an empty file: numpy's EOFError
    with pytest.raises(IndexDamagedError, match=name):
        open_index(tmp_path / "objects").region_hubness(side)
    np.save(report.release / name, np.full(index.vectors, np.nan, np.float32))
    with pytest.raises(IndexDamagedError, match=name):  # NaN would make every margin NaN
        open_index(tmp_path / "objects").region_hubness(side)


def test_a_build_with_objects_shows_its_region_passes_going(
    tmp_path: Path, tiny_extractor, capsys: pytest.CaptureFixture[str]
) -> None:
    """The room references are a region pass per pseudo-room and per probe view: seconds with
    Lite0, many minutes with B7, so the build shows them as it shows embedding."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)  # MIN_ROOMS rooms
    build_index(catalog, tmp_path / "idx", tiny_extractor, BuildOptions(objects=True))
    shown = capsys.readouterr().err
    assert "pseudo-rooms: 100%" in shown and "room probe: 100%" in shown
    assert shown.count(f"{MIN_ROOMS}/{MIN_ROOMS}") >= 2  # every room, then every probe view


def test_an_index_with_crops_reads_hubness_for_its_pictures(tmp_path: Path, tiny_extractor) -> None:
    """Written for the pictures alone; a file from before (one value per crop too) still reads."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    options = BuildOptions(progress=False, objects=True, views=1)
    report = build_index(catalog, tmp_path / "crops", tiny_extractor, options)
    index = open_index(tmp_path / "crops")
    side = region_side(tiny_extractor.input_size)
    hubness = index.region_hubness(side)
    assert index.vectors == 2 * index.pictures and hubness.shape == (index.pictures,)
    older = np.concatenate([hubness, np.ones(index.pictures, np.float32)])  # (V,)
    np.save(report.release / region_hubness_file(side), older, allow_pickle=False)
    np.testing.assert_array_equal(open_index(tmp_path / "crops").region_hubness(side), hubness)


def test_another_draw_is_computed_as_the_build_computes_its_own(
    tmp_path: Path, tiny_extractor
) -> None:
    """rooms_bench scores other pseudo-room draws from an index's own pictures: the default
    draw must reproduce the file the build wrote, another seed must differ."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    build_index(
        catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False, objects=True)
    )
    index = open_index(tmp_path / "idx")
    encoder = region_encoder_for(tiny_extractor)
    owners = index.store.product_of_vector[: index.pictures]
    pictures = CatalogPictures.from_files(owners, index.store.image_paths(), DEFAULT_LIMITS)

    def drawn(draw: Draw) -> np.ndarray:
        rooms = pseudo_rooms(encoder, pictures, draw)
        return region_hubness([index.picture_vectors()], owners, rooms)

    np.testing.assert_allclose(drawn(Draw()), index.region_hubness(encoder.side), atol=1e-6)
    assert np.abs(drawn(Draw(seed=Draw().seed + 1)) - drawn(Draw())).max() > 1e-3
