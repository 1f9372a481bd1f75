"""After `snapfind tune`, `index build` applies the new head to cached network vectors: no
image is embedded again, and the index holds exactly what embedding with the head gives."""

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.build import CACHE, BuildOptions, build_index
from index.store_sync import sync_store
from retrieval.errors import ConfigError
from retrieval.extractor import Extractor
from retrieval.head import HEAD_FILE, ProjectionHead, load_head
from retrieval.index_store import open_index
from retrieval.results import Page

QUIET = BuildOptions(progress=False)


def test_a_new_head_is_applied_to_cached_vectors_without_embedding_again(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    index_dir = tmp_path / "idx"
    first = build_index(shapes_catalog, index_dir, tiny_extractor, QUIET)
    assert first.embedded == first.vectors

    dim = tiny_extractor.fingerprint.dim
    residual = np.random.default_rng(3).normal(0, 0.05, (dim, dim)).astype(np.float32)
    head = ProjectionHead.from_array(residual)
    tuned = copy.copy(tiny_extractor)  # the same network, with the head attached
    tuned.attach_head(head)
    rebuilt = build_index(shapes_catalog, index_dir, tuned, QUIET)
    assert rebuilt.embedded == 0 and rebuilt.reused == first.vectors

    index = open_index(index_dir, tuned.fingerprint)
    plain = open_index(first.release)
    assert index.manifest.fingerprint.head == head.head_id
    assert np.allclose(index.picture_vectors(), head.apply(plain.picture_vectors()), atol=1e-6)
    # the "no good match" threshold is calibrated on the vectors the index holds
    assert index.no_match_below != plain.no_match_below
    # and a query embedded with the head finds its own picture first
    product = index.store.get([4])[0]
    pixels = np.asarray(Image.open(product.image).convert("RGB"))
    assert index.search(tuned.embed_one(pixels), Page(1))[0].product.id == product.id
    assert not tiny_extractor.head  # the plain extractor was never changed


class ListStore:
    """The three calls sync_store makes of a vector store, in memory."""

    def __init__(self) -> None:
        self.rows: dict = {}

    def contents(self) -> dict[str, str]:
        return {key: row.content for key, row in self.rows.items()}

    def remove_keys(self, keys: list[str]) -> None:
        for key in keys:
            self.rows.pop(key)

    def add(self, rows: list) -> None:
        self.rows.update({row.key: row for row in rows})


def test_the_store_mirror_gets_the_vectors_through_the_head(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    index_dir = tmp_path / "idx"
    dim = tiny_extractor.fingerprint.dim
    head = ProjectionHead.from_array(np.eye(dim, dtype=np.float32)[::-1] * 0.5)
    tuned = copy.copy(tiny_extractor)
    tuned.attach_head(head)
    build_index(shapes_catalog, index_dir, tuned, QUIET)
    index = open_index(index_dir, tuned.fingerprint)
    store = ListStore()
    report = sync_store(store, shapes_catalog, index_dir / CACHE, tuned.fingerprint, head)
    assert report.upserted == len(store.rows) == index.vectors
    product = index.store.get([0])[0]
    row = next(r for r in store.rows.values() if r.product_id == product.id)
    assert np.allclose(row.vector, index.vector_of(product.id), atol=1e-6)


def test_a_head_is_only_applied_to_the_network_it_was_trained_on(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """head.npz names its network: a head learnt on one backbone's features (or weights, or
    input size) is refused on another with the same dimension; a file that names none (saved
    before it did) is still taken."""
    dim = tiny_extractor.fingerprint.dim
    residual = np.random.default_rng(4).normal(0, 0.05, (dim, dim)).astype(np.float32)
    ProjectionHead.from_array(residual, tiny_extractor.fingerprint.network).save(
        tmp_path / HEAD_FILE
    )
    head = load_head(tmp_path)
    assert head is not None and head.network == tiny_extractor.fingerprint.network
    copy.copy(tiny_extractor).attach_head(head)  # its own network: taken

    bigger = copy.copy(tiny_extractor)  # the same backbone and weights at another input size
    bigger.fingerprint = replace(tiny_extractor.fingerprint, input_size=96)
    with pytest.raises(ConfigError, match=r"trained on efficientnetb0 .*64 px.*not on .*96 px"):
        bigger.attach_head(head)

    np.savez(tmp_path / HEAD_FILE, residual=residual)  # a head file from before
    older = load_head(tmp_path)
    assert older is not None and older.network == "" and older.head_id == head.head_id
    bigger.attach_head(older)
    assert bigger.fingerprint.head == head.head_id


def test_a_head_file_holding_a_pickle_is_refused_without_advising_pickle(tmp_path: Path) -> None:
    """numpy's message for a pickled array suggests `allow_pickle=True`: never ours to give."""
    np.savez(tmp_path / HEAD_FILE, residual=np.array([{"not": "numbers"}], dtype=object))
    with pytest.raises(ConfigError, match="cannot read the tuned head") as refused:
        load_head(tmp_path)
    assert "pickle" not in str(refused.value)
