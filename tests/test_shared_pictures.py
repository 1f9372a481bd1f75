"""One slot per picture: products sharing a photo are merged, the others named."""

from pathlib import Path

import pytest

from index.build import BuildOptions, build_index
from retrieval.extractor import Extractor
from retrieval.index_store import CatalogIndex, Hit, open_index
from retrieval.products import Product
from retrieval.results import Page
from retrieval.shared_pictures import merge_shared_pictures
from tests.synthetic import SHAPES, draw_item


def hit(pid: str, score: float) -> Hit:
    return Hit(Product(pid, pid.upper(), ("c",), None), score)


def test_later_products_of_a_picture_join_the_first_slot() -> None:
    pictures = {"a": "p1", "b": "p2", "c": "p1", "d": None, "e": "p1"}
    merged = merge_shared_pictures(
        [hit("a", 0.9), hit("b", 0.8), hit("c", 0.8), hit("d", 0.7), hit("e", 0.6)],
        pictures.get,
    )
    assert [h.product.id for h in merged] == ["a", "b", "d"]
    assert [p.title for p in merged[0].also_as] == ["C", "E"]
    assert merged[0].score == 0.9 and merged[1].also_as == ()


def test_products_without_a_known_picture_are_never_merged() -> None:
    merged = merge_shared_pictures([hit("x", 0.5), hit("y", 0.5)], lambda _: None)
    assert [h.product.id for h in merged] == ["x", "y"]


def _shared_picture_index(tmp_path: Path, extractor: Extractor) -> CatalogIndex:
    """8 products of 8 pictures, then a ninth (row 8) showing the first one's picture."""
    rows = ["id,title,categories,image"]
    for n in range(8):
        category = SHAPES[n % 3]
        draw_item(category, seed=n).save(tmp_path / f"{n}.jpg")
        rows.append(f"p{n},Item {n},{category},{n}.jpg")
    rows.append("p0-oak,Item 0 in oak,circles,0.jpg")  # a second product, the same picture
    (tmp_path / "catalog.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    options = BuildOptions(progress=False)
    build_index(tmp_path / "catalog.csv", tmp_path / "idx", extractor, options)
    return open_index(tmp_path / "idx", extractor.fingerprint)


def test_search_fills_the_page_with_distinct_pictures(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    index = _shared_picture_index(tmp_path, tiny_extractor)
    hits = index.search(index.vector_of("p0"), Page(8))
    ids = [h.product.id for h in hits]
    assert len(hits) == 8 and len({"p0", "p0-oak"} & set(ids)) == 1  # 8 pictures, 8 slots
    assert {ids[0], *(p.id for p in hits[0].also_as)} == {"p0", "p0-oak"}  # a tie: either first
    assert all(h.also_as == () for h in hits[1:])


def test_a_page_reads_only_its_slots_and_their_other_products(
    tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _shared_picture_index(tmp_path, tiny_extractor).store
    best = [(row, 1.0 - row / 10) for row in range(len(store))]  # p0 first, p0-oak last
    everything = store.hits(best)
    read: list[list[int]] = []
    get = store.get
    monkeypatch.setattr(store, "get", lambda rows: read.append(list(rows)) or get(rows))
    for slots in range(1, 10):
        assert store.hits(best, slots) == everything[:slots]
    assert read[0] == [0, 8]  # one slot: p0 and, though it ranks last, p0-oak in its caption
    assert read[2] == [0, 1, 2, 8] and read[-1] == list(range(9))
