"""Searching through a Milvus store (SNAPFIND_STORE): the query API the bot and `search` use,
backed by Milvus Lite; a `build --store` sync is seen by the next query, with no restart."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.store_sync import sync_after_build
from retrieval.errors import ConfigError, IndexMismatchError, IndexNotFoundError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.loading import load_service
from retrieval.results import Page
from retrieval.settings import Settings
from retrieval.store_index import StoreIndex
from retrieval.vector_store import StoredVector
from tests.synthetic import draw_item, write_shapes_catalog

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
    with pytest.raises(ConfigError, match="SNAPFIND_STORE"):
        service.index.picture_vectors()  # `search --objects` says why instead of failing
    room = np.random.default_rng(0).integers(0, 200, (96, 128, 3), dtype=np.uint8)  # not on white
    found = service.search_objects(room, k=2)  # the bot's room photos: whole, not an error
    assert found.objects == [] and found.whole.hits == service.search_image(room, Page(2)).hits
    page = service.search_vector(query, Page(2, offset=2))
    assert [h.product.id for h in page] == [
        h.product.id for h in service.search_vector(query, Page(4))[2:]
    ]


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
    finally:
        store.close()
