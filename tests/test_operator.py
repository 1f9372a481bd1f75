"""What an operator meets when the machine misbehaves: a full disk, a damaged vector cache, a
serving image without TensorFlow, a catalog row that links to the web. Each is one clear
error, and a failed build leaves the published index and the cache as they were."""

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

import index.vector_writer as vector_writer
from index.build import CACHE, BuildOptions, build_index
from index.catalog import load_catalog
from index.publish import RELEASES
from index.vector_cache import VectorCache
from retrieval.errors import ConfigError, SnapfindError
from retrieval.extractor import Extractor
from retrieval.index_store import CURRENT
from retrieval.loading import load_keras_extractor
from retrieval.settings import Settings
from snapfind import cli
from snapfind.commands import index_build

QUIET = BuildOptions(progress=False)


def index_state(index_dir: Path) -> dict[str, bytes]:
    """Every file under the index folder, by path, plus where `current` points."""
    files = {
        str(p.relative_to(index_dir)): p.read_bytes()
        for p in sorted(index_dir.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    return files | {CURRENT: str((index_dir / CURRENT).readlink()).encode()}


def cached_rows(index_dir: Path) -> set[tuple[str, bytes]]:
    rows: set[tuple[str, bytes]] = set()
    for path in (index_dir / CACHE).glob("*.sqlite"):
        with sqlite3.connect(path) as db:
            rows |= set(db.execute("SELECT hash, v FROM vectors"))
        db.close()
    return rows


def test_a_full_disk_while_writing_the_index_is_an_os_error_and_changes_nothing(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor, monkeypatch
) -> None:
    index_dir = tmp_path / "idx"
    build_index(shapes_catalog, index_dir, tiny_extractor, QUIET)
    before, rows = index_state(index_dir), cached_rows(index_dir)

    def full_disk(index: object, path: str) -> None:
        Path(path).write_bytes(b"half")  # what a full disk leaves behind
        raise RuntimeError(
            f"Error in faiss: write error in {path}: 4 != 9 (No space left on device)"
        )

    monkeypatch.setattr(vector_writer.faiss, "write_index", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        build_index(shapes_catalog, index_dir, tiny_extractor, QUIET)
    assert index_state(index_dir) == before, "no staging folder, old release and link untouched"
    assert cached_rows(index_dir) == rows
    assert not list((index_dir / RELEASES).glob(".staging-*"))


def test_a_damaged_vector_cache_is_one_error_naming_the_file_and_the_way_out(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    index_dir = tmp_path / "idx"
    build_index(shapes_catalog, index_dir, tiny_extractor, QUIET)
    [cache] = (index_dir / CACHE).glob("*.sqlite")
    cache.write_bytes(b"not a database at all" * 100)
    current = (index_dir / CURRENT).resolve()
    with pytest.raises(SnapfindError, match=rf"{cache.name} is damaged .*delete it"):
        build_index(shapes_catalog, index_dir, tiny_extractor, QUIET)
    assert (index_dir / CURRENT).resolve() == current


def test_a_full_cache_disk_says_so_in_one_line(tmp_path: Path, tiny_extractor: Extractor) -> None:
    cache = VectorCache(tmp_path, tiny_extractor.fingerprint)
    try:
        cache._db.execute("PRAGMA max_page_count = 3")  # SQLite's own "disk is full"
        rows = np.ones((50, tiny_extractor.fingerprint.dim), np.float32)
        with pytest.raises(SnapfindError, match="the disk is full; free some space"):
            cache.put_many({f"k{i}": row for i, row in enumerate(rows)})
    finally:
        cache.close()


def test_without_tensorflow_or_an_export_the_extractor_is_one_config_error(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # the serving image: no TensorFlow
    settings = Settings(backbone="efficientnet-lite0", runtime_dir=tmp_path / "runtime")
    with pytest.raises(ConfigError, match="no exported runtime model for efficientnet-lite0"):
        load_keras_extractor(settings)


def test_an_image_url_is_listed_as_a_url_not_as_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text("id,title,image\nu1,Lamp,https://shop.example/lamp.jpg\n")
    catalog = load_catalog(tmp_path / "catalog.csv")
    assert catalog.entries == []
    [(what, why)] = catalog.unreadable
    assert what == "https://shop.example/lamp.jpg"
    assert why.startswith("a URL: images are read from local files only")


@pytest.mark.parametrize(
    ("manifest", "content", "said"),
    [
        ("latin1.csv", b"id,title,image\n1,Caf\xe9,a.jpg\n", "is not UTF-8 text"),
        ("columns.csv", b"id,title\n1,Chair\n", "has no `image` column"),
        ("header.csv", b"id,title,image\n", "lists no images"),
        ("lines.jsonl", b'{"id": 1, "image": "a.jpg"}\n[1, 2]\n', "must be a JSON object"),
        ("catalog.txt", b"id,image\n1,a.jpg\n", "must be a folder, a .csv or a .jsonl"),
    ],
    ids=["not-utf8", "no-image-column", "no-rows", "not-an-object", "not-a-manifest"],
)
def test_a_bad_manifest_is_refused_before_the_model_loads_or_the_index_folder_is_made(
    manifest: str, content: bytes, said: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    def no_model(*args: object) -> None:
        raise AssertionError("the model was loaded before the catalog was checked")

    monkeypatch.setattr(index_build, "load_extractor_to_build", no_model)
    (tmp_path / manifest).write_bytes(content)
    out = tmp_path / "index"
    assert cli.main(["index", "build", "--catalog", str(tmp_path / manifest), "--out", str(out)])
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("snapfind: error: ") and said in line
    assert not out.exists()
