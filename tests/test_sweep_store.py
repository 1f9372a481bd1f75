"""Serving from and syncing into Milvus when things go wrong: a mistyped or unreachable store,
names Milvus's filter grammar must quote, a restarted server, a sync killed midway, and a
collection that holds another catalog. Each ends in one line, or in the right products."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from index.store_sync import sync_after_build
from retrieval.errors import ConfigError, IndexMismatchError, StoreError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.loading import load_service
from retrieval.settings import Settings
from retrieval.store_target import milvus_target
from retrieval.vector_store import StoredVector
from tests.synthetic import TINY_ARGS, write_shapes_catalog

milvus_store = pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")

QUIET = BuildOptions(progress=False, batch_size=4)
TWO_D = Fingerprint("efficientnet-lite0", "test:weights", 224, 2)
EAST = np.array([1.0, 0.0], np.float32)


def open_store(path: Path, collection: str = "shop") -> "milvus_store.MilvusStore":
    try:
        return milvus_store.MilvusStore(str(path), collection, TWO_D, create=True)
    except Exception as error:  # milvus-lite is a native server; some machines cannot run it
        pytest.skip(f"Milvus Lite cannot start here: {error}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "store",
    [
        "milvus://db.internal:19530?colection=shop",  # a typo once filled the default collection
        "milvus://db.internal:19530?collection=",
        "milvus://db.internal:19530?collection=a&collection=b",
        "milvus://db.internal:19530?collection=shop-1",  # Milvus refuses '-'
        'milvus://db.internal:19530?collection=a"b',
        "milvus://db.internal:abc?collection=shop",  # was a ValueError traceback
        "milvus://db.internal:99999",
        "milvus://db.internal:19530/shop",  # a path was dropped without a word
        "milvus:///tmp/m.db#shop",
    ],
)
def test_a_store_address_is_refused_unless_every_part_is_understood(store: str) -> None:
    with pytest.raises(ConfigError):
        milvus_target(store)


def test_index_build_refuses_a_mistyped_store_before_it_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from snapfind.cli import main

    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    out = tmp_path / "idx"
    command = ["index", "build", "--catalog", str(catalog), "--out", str(out), "--no-progress"]
    assert main([*command, *TINY_ARGS, "--store", "milvus://db.internal:abc"]) == 2
    assert "milvus://HOST:PORT" in capsys.readouterr().err
    assert not out.exists()  # nothing was embedded or published for a store that cannot be


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    """No server on the port, a Lite file in a missing folder: `StoreError`, which `snapfind`
    prints as one line (before: pymilvus's own exceptions, a traceback)."""
    with pytest.raises(StoreError, match="cannot open Milvus at http://127"):
        milvus_store.MilvusStore(f"http://127.0.0.1:{free_port()}", "shop", TWO_D)
    with pytest.raises(StoreError, match="not exist"):
        milvus_store.MilvusStore(str(tmp_path / "missing" / "m.db"), "shop", TWO_D, create=True)


def test_names_outside_ascii_or_holding_filter_syntax_filter_exactly(tmp_path: Path) -> None:
    """Cyrillic categories and ids made every filter on them fail (`\\u` escapes); a category
    holding quotes or Milvus syntax neither fails nor widens the filter."""
    store = open_store(tmp_path / "m.db")
    names = {
        "диван-1": "Диваны",
        "sofa-1": "sofa",
        "trick-1": 'sofa" or product_id != "',
        "slash-1": "back\\slash",
        "quote-1": "it's",
        "emoji-1": "🛋 sofas",
    }
    try:
        store.add(
            [StoredVector(f"{p}#0", p, (c,), EAST, "h") for p, c in names.items()]
            + [StoredVector("диван-1#1", "диван-1", ("Диваны",), EAST, "h")]
        )
        for product_id, category in names.items():
            assert [h.product_id for h in store.search(EAST, 10, category)] == [product_id]
        assert store.search(EAST, 10, 'nothing" or product_id != "') == []
        rest = {h.product_id for h in store.search(EAST, 10, exclude=["диван-1", 'x" or "1"=="1'])}
        assert rest == set(names) - {"диван-1"}
        np.testing.assert_array_equal(store.vector_of("диван-1"), EAST)
        assert set(store.vectors_of(["диван-1#1", "gone#0"])) == {"диван-1#1"}
        store.remove(["диван-1"])
        assert "диван-1" not in {h.product_id for h in store.search(EAST, 10)}
    finally:
        store.close()


def test_a_released_collection_is_loaded_again(tmp_path: Path) -> None:
    """A restarted Milvus Lite server has every collection released: the store loads it again
    instead of failing every query until the bot restarts."""
    store = open_store(tmp_path / "m.db")
    try:
        store.add([StoredVector("p#0", "p", ("c",), EAST, "h")])
        other = milvus_store.MilvusClient(str(tmp_path / "m.db"))
        other.release_collection("shop")
        other.close()
        assert [h.product_id for h in store.search(EAST, 1)] == ["p"]
    finally:
        store.close()


class LiteServer:
    """A Milvus Lite gRPC server in another process, as a Milvus server is to the bot."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data)]
        self.command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        assert "listening" in self.process.stdout.readline()  # blocks until it serves

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def lite_server(tmp_path: Path):
    server = LiteServer(tmp_path / "server")
    server.start()
    yield server
    server.stop()


def search_when_back(store: "milvus_store.MilvusStore", within: float = 60) -> list:
    """The store's answer once the client has reconnected (its own back-off): wait for that
    event, each failure on the way being a `StoreError`."""
    deadline = time.monotonic() + within
    while True:
        try:
            return store.search(EAST, 1)
        except StoreError as error:
            assert time.monotonic() < deadline, error


def test_a_server_going_down_is_one_line_and_coming_back_is_served(
    lite_server: LiteServer,
) -> None:
    store = milvus_store.MilvusStore(
        f"http://127.0.0.1:{lite_server.port}", "shop", TWO_D, create=True
    )
    try:
        store.add([StoredVector("p#0", "p", ("c",), EAST, "h")])
        lite_server.stop()
        with pytest.raises(StoreError, match="Milvus collection 'shop'"):
            store.search(EAST, 1)
        lite_server.start()  # a restarted Lite server has released every collection
        assert [h.product_id for h in search_when_back(store)] == ["p"]
    finally:
        store.close()


def test_a_frozen_server_answers_a_search_within_its_deadline(
    lite_server: LiteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts but does not answer held the bot's one inference thread 70 s a
    query; now a search fails after `READ_SECONDS` (2 here), and works once it thaws."""
    monkeypatch.setattr(milvus_store, "READ_SECONDS", 2.0, raising=False)
    store = milvus_store.MilvusStore(
        f"http://127.0.0.1:{lite_server.port}", "shop", TWO_D, create=True
    )
    store.add([StoredVector("p#0", "p", ("c",), EAST, "h")])
    outcome: list[object] = []

    def search() -> None:
        try:
            outcome.append(store.search(EAST, 1))
        except Exception as error:
            outcome.append(error)

    os.kill(lite_server.process.pid, signal.SIGSTOP)
    try:
        waiting = threading.Thread(target=search, daemon=True)
        waiting.start()
        waiting.join(30)
        assert outcome and isinstance(outcome[0], StoreError), outcome or "still waiting"
    finally:
        os.kill(lite_server.process.pid, signal.SIGCONT)
    assert [h.product_id for h in search_when_back(store)] == ["p"]
    store.close()


def test_a_sync_killed_after_creating_the_collection_is_finished_by_the_next(
    tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collection and its fingerprint were two requests: a kill between them left a
    collection every later sync refused as "made by another extractor (None)"."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    out, store = tmp_path / "idx", f"milvus://{tmp_path / 'm.db'}"
    release = build_index(catalog, out, tiny_extractor, QUIET).release
    create = milvus_store.MilvusClient.create_collection

    def killed_after(client, *args, **kwargs) -> None:
        create(client, *args, **kwargs)
        raise KeyboardInterrupt  # the operator's ^C, or a kill, once the collection exists

    monkeypatch.setattr(milvus_store.MilvusClient, "create_collection", killed_after)
    with pytest.raises(KeyboardInterrupt):
        sync_after_build(store, catalog, out, release)
    monkeypatch.undo()
    report = sync_after_build(store, catalog, out, release)
    assert (report.upserted, report.deleted) == (3, 0)


def test_a_store_holding_another_catalog_is_refused_at_start(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """Served from another shop's collection (same extractor), every photo was answered "no
    good match"; now serving does not start, and says why in one line."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    out, db = tmp_path / "idx", tmp_path / "m.db"
    release = build_index(catalog, out, tiny_extractor, QUIET).release
    sync_after_build(f"milvus://{db}?collection=shop", catalog, out, release)
    other = milvus_store.MilvusStore(str(db), "other", tiny_extractor.fingerprint, create=True)
    vector = np.ones(tiny_extractor.fingerprint.dim, np.float32)
    other.add([StoredVector("elsewhere#0", "elsewhere", ("c",), vector / np.linalg.norm(vector))])
    other.close()

    def settings(collection: str) -> Settings:
        return Settings(index_dir=out, store=f"milvus://{db}?collection={collection}")

    with pytest.raises(IndexMismatchError, match="holds none of 3 products"):
        load_service(settings("other"), tiny_extractor)
    assert load_service(settings("shop"), tiny_extractor).probe()


def test_a_row_the_collection_cannot_hold_is_refused_by_name(tmp_path: Path) -> None:
    """A 17th category was cut off (a filter on it missed the product); an id past 512
    characters failed the sync with pymilvus's error. Both are one line, and the batch is
    not written."""
    store = open_store(tmp_path / "m.db")
    many = tuple(f"c{n}" for n in range(17))
    try:
        with pytest.raises(ConfigError, match="'wide' is in 17 categories, 16 at most"):
            store.add(
                [
                    StoredVector("ok#0", "ok", ("c",), EAST),
                    StoredVector("wide#0", "wide", many, EAST),
                ]
            )
        with pytest.raises(ConfigError, match="past 512 characters"):
            store.add([StoredVector("x" * 600 + "#0", "x" * 600, ("c",), EAST)])
        assert store.contents() == {}
    finally:
        store.close()
