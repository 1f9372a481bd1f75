"""Defects found sweeping how snapfind reads files an operator may damage or edit by hand:
manifest.json, products.sqlite, the tuned head.npz and an exported runtime.json. Each is refused
on reading, in one line naming the file, never met later as a traceback or a wrong answer."""

import io
import json
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index
from retrieval import products
from retrieval.errors import ConfigError, IndexDamagedError, RuntimeModelError
from retrieval.extractor import Extractor, Fingerprint, file_sha256
from retrieval.head import HEAD_FILE, ProjectionHead, load_head
from retrieval.index_store import CatalogIndex
from retrieval.manifest import MANIFEST, MAX_JSON_BYTES, Manifest
from retrieval.products import SCHEMA, ProductStore
from retrieval.runtime_file import RECORD, RegionModel, RuntimeRecord, find_runtime, runtime_home
from snapfind.cli import main
from tests.synthetic import write_shapes_catalog

FINGERPRINT = Fingerprint("efficientnetb0", "none:seed1234", 64, 8)
JsonEdit = Callable[[dict], object]


def _one_line(error: BaseException, name: str) -> str:
    message = str(error)
    assert name in message and "\n" not in message
    return message


# --- manifest.json ---------------------------------------------------------------------------


def _manifest_file(tmp_path: Path, edit: JsonEdit) -> Path:
    manifest = Manifest(FINGERPRINT, "efficientnetb0", "Flat", 3, 3, "2026-12-04", "/shop")
    raw = json.loads(manifest.to_json())
    edited = edit(raw)
    path = tmp_path / MANIFEST
    path.write_text(edited if isinstance(edited, str) else json.dumps(raw), encoding="utf-8")
    return path


def _set(path: str, value: object) -> JsonEdit:
    """An edit setting the field at dotted `path` to `value`."""

    def edit(raw: dict) -> None:
        *parents, name = path.split(".")
        for parent in parents:
            raw = raw[parent]
        raw[name] = value

    return edit


# JSON files any size or depth: read whole, or a RecursionError, before the bound
OUTSIZED = [
    (lambda raw: " " * (MAX_JSON_BYTES + 1) + json.dumps(raw), "over"),
    (lambda raw: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
]


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_set("fingerprint.input_size", "64"), "fingerprint.input_size"),  # was a TypeError
        (_set("products", "six"), "products"),
        (_set("extra", []), "extra"),  # was an AttributeError at load
        (_set("extra.no_match_below", float("nan")), "extra.no_match_below"),  # silently used
        *OUTSIZED,
    ],
)
def test_a_manifest_edited_by_hand_is_one_damaged_line(
    tmp_path: Path, edit: JsonEdit, why: str
) -> None:
    path = _manifest_file(tmp_path, edit)
    with pytest.raises(IndexDamagedError) as caught:
        Manifest.read(path)
    assert why in _one_line(caught.value, str(path))


def test_an_untouched_manifest_still_reads(tmp_path: Path) -> None:
    manifest = Manifest.read(_manifest_file(tmp_path, lambda raw: None))
    assert manifest.fingerprint == FINGERPRINT and manifest.extra == {}


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, tiny_extractor: Extractor) -> Path:
    root = tmp_path_factory.mktemp("sweep-reading")
    build_index(write_shapes_catalog(root / "catalog", 2), root / "index", tiny_extractor)
    return root / "index"


def _edited_copy(small_index: Path, tmp_path: Path, name: str, edit: Callable[[Path], None]):
    copy = tmp_path / "index"
    shutil.copytree(small_index / "current", copy)
    edit(copy / name)
    return copy


def _edit_manifest(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["fingerprint"]["input_size"] = "64"
    path.write_text(json.dumps(raw), encoding="utf-8")


def _rename_last_product(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE products SET row = 99 WHERE row = (SELECT max(row) FROM products)")


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        (MANIFEST, _edit_manifest),  # was a TypeError traceback in the extractor
        ("products.sqlite", _rename_last_product),  # was a KeyError at a photo finding it
    ],
)
def test_search_over_a_hand_edited_index_is_one_line(
    small_index: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    edit: Callable[[Path], None],
) -> None:
    index_dir = _edited_copy(small_index, tmp_path, name, edit)
    photo = next((small_index.parent / "catalog").rglob("*.jpg"))
    code = main(["search", str(photo), "--index", str(index_dir), "-k", "10"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("snapfind: error: index file") and "\n" not in err
    assert name in err and "damaged" in err


# --- products.sqlite -------------------------------------------------------------------------


def _products_file(tmp_path: Path, damage: str) -> Path:
    path = tmp_path / "products.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        for row, name in enumerate(("circle", "square", "triangle")):
            db.execute(
                "INSERT INTO products VALUES (?, ?, ?, ?, NULL, NULL, NULL, '{}')",
                (row, name, name.title(), json.dumps([f"{name}s"])),
            )
            db.execute("INSERT INTO images VALUES (?, ?, ?, ?)", (row, row, f"{name}.jpg", name))
        db.executescript(damage)
    return path


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE products SET extra = '{bad' WHERE row = 1",  # was a traceback at a photo
        "UPDATE products SET extra = '[1]' WHERE row = 1",
        "UPDATE products SET categories = '\"circles\"' WHERE row = 0",  # was 7 letters
        "UPDATE products SET categories = '[1]' WHERE row = 0",
        "UPDATE products SET row = 9 WHERE row = 2",  # was a KeyError at a photo
        "UPDATE images SET vector_id = 9 WHERE vector_id = 1",  # was wrong products
        "UPDATE images SET product_row = 'x' WHERE vector_id = 1",  # was a ValueError
        "DELETE FROM products WHERE row = 2",
    ],
)
def test_a_damaged_products_row_is_refused_on_opening(tmp_path: Path, damage: str) -> None:
    path = _products_file(tmp_path, damage)
    with pytest.raises(IndexDamagedError) as caught:
        ProductStore(path)
    assert "damaged" in _one_line(caught.value, str(path))


def test_an_untouched_products_file_still_reads(tmp_path: Path) -> None:
    store = ProductStore(_products_file(tmp_path, ""))
    assert [p.title for p in store.get([2, 0])] == ["Triangle", "Circle"]
    assert store.categories() == ["circles", "squares", "triangles"]
    store.close()


def test_records_read_again_come_from_memory_the_least_recent_leaving_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(products, "RECORDS_HELD", 2)
    store = ProductStore(_products_file(tmp_path, ""))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    first = store.get([2, 0])
    again = store.get([0, 2, 2])  # 2 is now the one shown last
    assert [p.title for p in again] == ["Circle", "Triangle", "Triangle"]
    assert again[0] is first[1] and len(statements) == 1  # SQLite was asked once
    store.get([1])  # a third record: the one shown least recently (0) leaves memory
    assert len(statements) == 2
    store.get([2])
    assert len(statements) == 2
    assert [p.title for p in store.get([0])] == ["Circle"] and len(statements) == 3
    store.close()


# --- head.npz --------------------------------------------------------------------------------


def _head_file(tmp_path: Path, **arrays: np.ndarray) -> Path:
    np.savez(tmp_path / HEAD_FILE, **arrays)
    return tmp_path / HEAD_FILE


def _claims_a_huge_matrix(tmp_path: Path) -> Path:
    """A few bytes whose header states a 10⁶ × 10⁶ residual: numpy would allocate 3.6 TiB."""
    header = io.BytesIO()
    shape = {"descr": "<f4", "fortran_order": False, "shape": (1_000_000, 1_000_000)}
    np.lib.format.write_array_header_1_0(header, shape)
    with zipfile.ZipFile(tmp_path / HEAD_FILE, "w") as archive:
        archive.writestr("residual.npy", header.getvalue())
    return tmp_path / HEAD_FILE


NETWORK = np.array("efficientnetb0|none:seed1234|64|8")
SQUARE = np.zeros((8, 8), np.float32)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(  # was an index of NaN vectors answering every photo "no match"
            lambda d: _head_file(d, residual=np.full((8, 8), np.nan, np.float32), network=NETWORK),
            id="nan",
        ),
        pytest.param(  # was a ValueError
            lambda d: _head_file(d, residual=np.full((2, 2), "a"), network=NETWORK), id="text"
        ),
        pytest.param(  # was a ValueError naming it in the mismatch message
            lambda d: _head_file(d, residual=SQUARE, network=np.zeros(3)), id="network-array"
        ),
        pytest.param(
            lambda d: _head_file(d, residual=SQUARE, network=np.array("lite0")), id="network-text"
        ),
        pytest.param(_claims_a_huge_matrix, id="huge-header"),  # was a MemoryError
    ],
)
def test_a_head_of_wrong_values_is_refused(tmp_path: Path, write: Callable[[Path], Path]) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_head(tmp_path)
    _one_line(caught.value, str(path))


@pytest.mark.parametrize("keep", [0, 100, -100])  # empty (EOFError), truncated (BadZipFile)
def test_a_truncated_head_is_one_line(tmp_path: Path, keep: int) -> None:
    path = _head_file(tmp_path, residual=SQUARE, network=NETWORK)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ConfigError) as caught:
        load_head(tmp_path)
    _one_line(caught.value, str(path))


def test_a_saved_head_and_an_older_one_without_its_network_still_load(tmp_path: Path) -> None:
    saved = ProjectionHead.from_array(np.eye(8) * 0.1, str(NETWORK))
    saved.save(tmp_path / HEAD_FILE)
    loaded = load_head(tmp_path)
    assert loaded is not None and (loaded.head_id, loaded.network) == (saved.head_id, saved.network)
    _head_file(tmp_path, residual=SQUARE)
    assert load_head(tmp_path).network == ""


# --- runtime.json ----------------------------------------------------------------------------


def _runtime(tmp_path: Path, edit: JsonEdit) -> Path:
    """An exported runtime for FINGERPRINT whose model hash matches, `edit` applied to its
    record; the folder it was written to."""
    home = runtime_home(tmp_path, FINGERPRINT)
    home.mkdir(parents=True)
    (home / "model.tflite").write_bytes(b"stand-in")
    (home / "regions.tflite").write_bytes(b"map")
    sha = file_sha256(home / "model.tflite")
    regions = RegionModel(256, file_sha256(home / "regions.tflite"), 3, 1.0)
    record = RuntimeRecord(
        FINGERPRINT, "b0", 1, "litert", sha, 8, 1.0, "2026-12-04", "test", regions
    )
    raw = json.loads(record.to_json())
    edited = edit(raw)
    (home / RECORD).write_text(edited if isinstance(edited, str) else json.dumps(raw))
    return home


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_set("format", ["litert"]), "format"),  # was a TypeError: unhashable list
        (_set("regions.side", "256"), "side"),
        (_set("probe_cosine", "high"), "probe_cosine"),
        *OUTSIZED,
    ],
)
def test_a_runtime_record_edited_by_hand_is_one_line(
    tmp_path: Path, edit: JsonEdit, why: str
) -> None:
    home = _runtime(tmp_path, edit)
    with pytest.raises(RuntimeModelError) as caught:
        find_runtime(tmp_path, FINGERPRINT)
    assert why in _one_line(caught.value, str(home / RECORD))


def test_an_untouched_runtime_record_is_found(tmp_path: Path) -> None:
    _runtime(tmp_path, lambda raw: None)
    record = find_runtime(tmp_path, FINGERPRINT)
    assert record is not None and record.regions is not None and record.regions.side == 256


@pytest.mark.parametrize("key", ["rerank.depth", "no_match_below"])
def test_a_search_rule_that_is_no_number_is_a_damaged_manifest(
    small_index: Path, tmp_path: Path, key: str
) -> None:
    """Strings are valid `extra` values, so the manifest reads; the rule a search would apply
    is refused when the release opens (it was a ValueError traceback there)."""

    def edit(path: Path) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["extra"][key] = "abc"
        path.write_text(json.dumps(raw), encoding="utf-8")

    copy = _edited_copy(small_index, tmp_path, MANIFEST, edit)
    with pytest.raises(IndexDamagedError, match=r"manifest\.json is damaged \(a rule is no number"):
        CatalogIndex(copy)
