"""`index build --store milvus://…`: only changed rows are upserted, removed ones deleted."""

from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.store_sync import sync_after_build
from retrieval.errors import ConfigError, IndexMismatchError
from retrieval.extractor import Extractor
from retrieval.store_target import milvus_target
from tests.synthetic import draw_item, write_shapes_catalog

QUIET = BuildOptions(progress=False, batch_size=4)


def test_store_urls() -> None:
    assert milvus_target("milvus://db.internal:19530?collection=shop") == (
        "http://db.internal:19530",
        "shop",
    )
    assert milvus_target("milvus:///var/lib/snapfind/m.db") == (
        "/var/lib/snapfind/m.db",
        "snapfind",
    )
    with pytest.raises(ConfigError):
        milvus_target("redis://x")
    with pytest.raises(ConfigError):
        milvus_target("milvus:///tmp/folder")


def test_sync_upserts_only_changes_and_deletes_removed(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    milvus_store = pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=4)
    out, db = tmp_path / "idx", tmp_path / "m.db"
    store = f"milvus://{db}"
    try:
        first = sync_after_build(
            store, catalog, out, build_index(catalog, out, tiny_extractor, QUIET).release
        )
    except Exception as error:
        pytest.skip(f"Milvus Lite cannot start here: {error}")
    assert (first.upserted, first.deleted, first.unchanged) == (12, 0, 0)
    again = sync_after_build(
        store, catalog, out, build_index(catalog, out, tiny_extractor, QUIET).release
    )
    assert (again.upserted, again.deleted) == (0, 0)
    draw_item("triangles", 999).save(catalog / "shop" / "triangles" / "new.jpg")
    (catalog / "shop" / "squares" / "squares-3.jpg").unlink()
    third = sync_after_build(
        store, catalog, out, build_index(catalog, out, tiny_extractor, QUIET).release
    )
    assert (third.upserted, third.deleted, third.unchanged) == (1, 1, 11)
    reader = milvus_store.MilvusStore(str(db), "snapfind", tiny_extractor.fingerprint)
    try:
        found = {h.product_id for h in reader.search(np.ones(1280, np.float32) / 1280**0.5, k=50)}
        assert "shop/triangles/new" in found and "shop/squares/squares-3" not in found
    finally:
        reader.close()


def test_sync_refuses_a_collection_of_another_extractor(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    milvus_store = pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    from dataclasses import replace

    db = tmp_path / "m.db"
    try:
        other = replace(tiny_extractor.fingerprint, backbone="efficientnet-lite2")
        milvus_store.MilvusStore(str(db), "snapfind", other, create=True).close()
    except Exception as error:
        pytest.skip(f"Milvus Lite cannot start here: {error}")
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    release = build_index(catalog, tmp_path / "idx", tiny_extractor, QUIET).release
    with pytest.raises(IndexMismatchError, match="another extractor"):
        sync_after_build(f"milvus://{db}", catalog, tmp_path / "idx", release)


def test_index_build_command_mirrors_into_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    from snapfind.cli import main
    from tests.test_cli import TINY

    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    command = ["index", "build", "--catalog", str(catalog), "--out", str(tmp_path / "idx")]
    store = f"milvus://{tmp_path / 'm.db'}?collection=shop"
    assert main([*command, "--no-progress", *TINY, "--store", store]) == 0
    assert f"{store}: 6 upserted, 0 deleted, 0 unchanged" in capsys.readouterr().out
    assert main([*command, "--no-progress", *TINY, "--store", store]) == 0
    assert f"{store}: 0 upserted, 0 deleted, 6 unchanged" in capsys.readouterr().out
