"""Searching through a Milvus store (SNAPFIND_STORE): the query API the bot and `search` use,
backed by Milvus Lite; a `build --store` sync is seen by the next query, with no restart."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

from index.build import BuildOptions, build_index
from index.store_sync import sync_after_build
from retrieval.errors import IndexMismatchError, IndexNotFoundError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.index_store import open_index
from retrieval.loading import load_service
from retrieval.rerank import DEFAULT
from retrieval.results import Hit, Page
from retrieval.search import SearchService
from retrieval.settings import Settings
from retrieval.store_index import StoreIndex
from retrieval.store_target import milvus_target
from retrieval.vector_store import StoredVector, picture_key
from tests.synthetic import (
    FURNITURE,
    SHAPES,
    compose_room,
    draw_furniture,
    draw_item,
    write_shapes_catalog,
)

QUIET = BuildOptions(progress=False, batch_size=4)
CHANGED = "shop/squares/squares-1"


def build_and_sync(catalog: Path, out: Path, store: str, extractor: Extractor):
    release = build_index(catalog, out, extractor, QUIET).release
    return sync_after_build(store, catalog, out, release)


@pytest.fixture
def milvus_catalog(tmp_path: Path, tiny_extractor: Extractor) -> tuple[Path, Path, str]:
    """A shapes catalog built into an index and mirrored into a Milvus Lite file."""
    pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=3)
    out, store = tmp_path / "idx", f"milvus://{tmp_path / 'm.db'}"
    try:
        build_and_sync(catalog, out, store, tiny_extractor)
    except Exception as error:  # milvus-lite is a native server; some machines cannot run it
        pytest.skip(f"Milvus Lite cannot start here: {error}")
    return catalog, out, store


def test_a_synced_change_is_searched_at_once_without_restart_or_reload(
    milvus_catalog: tuple[Path, Path, str], tmp_path: Path, tiny_extractor: Extractor
) -> None:
    catalog, out, store = milvus_catalog
    service = load_service(Settings(index_dir=out, store=store), tiny_extractor)
    assert isinstance(service.index, StoreIndex)
    served = service.describe().release
    new_photo = tmp_path / "new.jpg"
    draw_item("circles", 777).save(new_photo)  # the squares product's new photo: a circle
    photo = new_photo.read_bytes()
    before = service.search_bytes(photo, Page(3))
    assert CHANGED not in [h.product.id for h in before.hits]

    shutil.copy(new_photo, catalog / "shop" / "squares" / "squares-1.jpg")
    report = build_and_sync(catalog, out, store, tiny_extractor)
    assert (report.upserted, report.deleted) == (1, 0)

    after = service.search_bytes(photo, Page(3))  # the same service object: nothing restarted
    assert after.hits[0].product.id == CHANGED and after.hits[0].score > 0.999
    assert service.describe().release == served  # and no release was reloaded either
    assert service.reload().release != served  # a reload keeps searching the store
    assert isinstance(service.index, StoreIndex)
    assert service.search_bytes(photo, Page(1)).hits[0].product.id == CHANGED


def test_category_filter_similar_and_probe_go_through_the_store(
    milvus_catalog: tuple[Path, Path, str], tiny_extractor: Extractor
) -> None:
    _, out, store = milvus_catalog
    service = load_service(Settings(index_dir=out, store=store), tiny_extractor)
    query = service.index.vector_of("shop/circles/circles-0")
    hits = service.search_vector(query, Page(3, "Squares"))
    assert len(hits) == 3 and all("squares" in h.product.categories for h in hits)
    similar = service.similar_to("shop/circles/circles-0", k=4)
    assert similar is not None and len(similar.hits) == 4
    assert "shop/circles/circles-0" not in [h.product.id for h in similar.hits]
    assert service.similar_to("shop/not/there") is None
    assert service.probe()
    assert "squares" in service.index.categories() and len(service.index) == 9
    room = np.random.default_rng(0).integers(0, 200, (96, 128, 3), dtype=np.uint8)  # not on white
    found = service.search_objects(room, k=2)  # built without --objects: searched whole
    assert found.objects == [] and found.whole.hits == service.search_image(room, Page(2)).hits
    page = service.search_vector(query, Page(2, offset=2))
    assert [h.product.id for h in page] == [
        h.product.id for h in service.search_vector(query, Page(4))[2:]
    ]


def test_the_store_ranks_as_the_release_kind_first_and_one_slot_per_picture(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """Moving the vectors to Milvus keeps what a page shows: the manifest's category vote and
    one slot for the products that share a picture."""
    pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    rows = ["id,title,categories,image"]
    for n in range(9):
        draw_item(SHAPES[n % 3], seed=n).save(tmp_path / f"{n}.jpg")
        rows.append(f"p{n},Item {n},{SHAPES[n % 3]},{n}.jpg")
    rows.append("p0-oak,Item 0 in oak,circles,0.jpg")  # a second product, the same picture
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, store = tmp_path / "idx", f"milvus://{tmp_path / 'm.db'}"
    try:
        build_and_sync(catalog, out, store, tiny_extractor)
    except Exception as error:  # milvus-lite is a native server; some machines cannot run it
        pytest.skip(f"Milvus Lite cannot start here: {error}")
    served = load_service(Settings(index_dir=out, store=store), tiny_extractor).index
    release = open_index(out, tiny_extractor.fingerprint)
    assert served.rerank == release.rerank == DEFAULT

    def slots(hits: list[Hit]) -> list[frozenset[str]]:
        return [frozenset({h.product.id, *(p.id for p in h.also_as)}) for h in hits]

    for n in range(9):
        vector = release.vector_of(f"p{n}")
        page = served.search(vector, Page(6))
        assert slots(page) == slots(release.search(vector, Page(6))), n
        kinds = [SHAPES[n % 3] in h.product.categories for h in page]
        assert kinds == sorted(kinds, reverse=True)  # the nearest product's kind first
    first = served.search(release.vector_of("p0"), Page(3))[0]
    assert {first.product.id, *(p.id for p in first.also_as)} == {"p0", "p0-oak"}


def test_a_missing_collection_or_another_extractors_store_is_refused(
    milvus_catalog: tuple[Path, Path, str], tiny_extractor: Extractor
) -> None:
    _, out, store = milvus_catalog
    with pytest.raises(IndexNotFoundError, match="no collection 'elsewhere'"):
        load_service(Settings(index_dir=out, store=f"{store}?collection=elsewhere"), tiny_extractor)
    from retrieval.store_index import store_opener

    other = Fingerprint("efficientnet-lite2", "x", 260, tiny_extractor.fingerprint.dim)
    with pytest.raises(IndexMismatchError, match="another extractor"):
        store_opener(store, other)


def test_contents_reads_every_row_past_one_query_window(tmp_path: Path) -> None:
    """16,500 rows: more than the 16,384 a single Milvus query may return."""
    milvus_store = pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    fingerprint = Fingerprint("efficientnet-lite0", "test:weights", 224, 2)
    try:
        store = milvus_store.MilvusStore(str(tmp_path / "big.db"), "big", fingerprint, create=True)
    except Exception as error:
        pytest.skip(f"Milvus Lite cannot start here: {error}")
    try:
        vector, count = np.array([1.0, 0.0], np.float32), 16_500
        for start in range(0, count, 5_500):
            store.add(
                [
                    StoredVector(f"p{i}#0", f"p{i}", ("c",), vector, f"h{i}")
                    for i in range(start, start + 5_500)
                ]
            )
        contents = store.contents()
        assert len(contents) == count and contents["p16499#0"] == "h16499"
        keys = [f"p{i}#0" for i in range(0, count, 6)] + ["gone#0"]  # 2,750: three queries
        assert list(store.vectors_of(keys)) == keys[:-1]
    finally:
        store.close()


def test_a_room_photo_served_from_the_store_finds_the_objects_the_release_finds(
    tmp_path: Path, lite0_extractor: Extractor
) -> None:
    """The object step over Milvus: the same objects, labels and products as over the release's
    FAISS file, from the release's hubness and probe and the store's vectors; the sample of
    pictures is read by key (a product's second picture included), a removed one left out."""
    milvus_store = pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    rows = ["id,title,categories,image"]
    for kind in FURNITURE:
        picture = draw_furniture(kind)
        picture.save(tmp_path / f"{kind}.jpg", quality=95)
        ImageOps.mirror(picture).save(tmp_path / f"{kind}-mirrored.jpg", quality=95)
        rows += [f"{kind},A {kind},{kind},{kind}{side}.jpg" for side in ("", "-mirrored")]
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, store = tmp_path / "idx", f"milvus://{tmp_path / 'm.db'}"
    options = BuildOptions(progress=False, objects=True, scenes=0)  # a store mirrors pictures
    try:
        release = build_index(catalog, out, lite0_extractor, options).release
        sync_after_build(store, catalog, out, release)
    except Exception as error:  # milvus-lite is a native server; some machines cannot run it
        pytest.skip(f"Milvus Lite cannot start here: {error}")
    served = load_service(Settings(index_dir=out, store=store), lite0_extractor)
    local = SearchService(lite0_extractor, open_index(out, lite0_extractor.fingerprint), out)
    assert isinstance(served.index, StoreIndex)

    ids, vectors = served.index.picture_sample()
    expected_ids, expected = local.index.picture_sample()
    assert ids.tolist() == expected_ids.tolist() == list(range(2 * len(FURNITURE)))
    np.testing.assert_allclose(vectors, expected, atol=1e-6)

    image, truth = compose_room(("sofa", "lamp", "rug"))
    found, expected_objects = served.search_objects(image, k=3), local.search_objects(image, k=3)
    assert len(found.objects) >= 2
    assert [(o.box, o.label) for o in found.objects] == [
        (o.box, o.label) for o in expected_objects.objects
    ]
    for mine, theirs in zip(found.objects, expected_objects.objects, strict=True):
        assert [h.product.id for h in mine.result.hits] == [
            h.product.id for h in theirs.result.hits
        ]
    labels = {o.label for o in found.objects}
    assert set(truth) <= labels, labels

    milvus = milvus_store.MilvusStore(*milvus_target(store), lite0_extractor.fingerprint)
    try:
        milvus.remove_keys([picture_key("lamp", 1)])  # a sync removed the lamp's second picture
    finally:
        milvus.close()
    ids, vectors = served.index.picture_sample()
    lamp = local.index.store.row_of("lamp")
    gone = [i for i in expected_ids if local.index.store.product_of_vector[i] == lamp][1]
    assert gone not in ids and len(ids) == len(vectors) == len(expected_ids) - 1
