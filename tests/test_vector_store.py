"""Every vector store answers alike: the exact FAISS reference and Milvus (Lite, no server)."""

from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import IndexMismatchError
from retrieval.extractor import Fingerprint
from retrieval.vector_store import FaissStore, StoredVector

DIM = 16
PRINT = Fingerprint("efficientnet-lite0", "test:weights", 224, DIM)


def _milvus(tmp_path: Path, fingerprint: Fingerprint = PRINT):
    milvus_store = pytest.importorskip("retrieval.milvus_store", reason="pymilvus not installed")
    try:
        return milvus_store.MilvusStore(
            str(tmp_path / "milvus.db"), "catalog", fingerprint, create=True
        )
    except Exception as error:  # milvus-lite is a native server; some machines cannot run it
        if isinstance(error, IndexMismatchError):
            raise
        pytest.skip(f"Milvus Lite cannot start here: {error}")


@pytest.fixture(params=["faiss", "milvus"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    made = FaissStore(DIM) if request.param == "faiss" else _milvus(tmp_path)
    yield made
    if hasattr(made, "close"):
        made.close()


def _catalog() -> list[StoredVector]:
    """12 products in 3 categories; product p0 has two photos."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((13, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    items = [
        StoredVector(f"p{i}#0", f"p{i}", (("sofa", "chair", "table")[i % 3],), rows[i], "v1")
        for i in range(12)
    ]
    return [*items, StoredVector("p0#1", "p0", ("sofa",), rows[12], "v1")]


def _exact(items: list[StoredVector], query: np.ndarray, category: str | None = None) -> list:
    best: dict[str, float] = {}
    for item in items:
        if category is None or category in item.categories:
            score = float(item.vector @ query)
            best[item.product_id] = max(score, best.get(item.product_id, -2.0))
    return sorted(best, key=lambda p: -best[p])


def test_search_returns_products_once_best_first(store) -> None:
    items = _catalog()
    store.add(items)
    query = items[12].vector  # p0's second photo
    hits = store.search(query, k=5)
    assert [h.product_id for h in hits] == _exact(items, query)[:5]
    assert hits[0].product_id == "p0" and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_category_filter_and_exclusions(store) -> None:
    items = _catalog()
    store.add(items)
    query = items[1].vector
    chairs = store.search(query, k=10, category="chair")
    assert [h.product_id for h in chairs] == _exact(items, query, "chair")  # all 4, not fewer
    without = store.search(query, k=3, category="Chair", exclude=["p1"])
    assert [h.product_id for h in without] == _exact(items, query, "chair")[1:4]


def test_remove_and_replace(store) -> None:
    items = _catalog()
    store.add(items)
    store.remove(["p0"])
    assert "p0" not in [h.product_id for h in store.search(items[0].vector, k=12)]
    with pytest.raises(KeyError):
        store.vector_of("p0")
    moved = StoredVector("p1#0", "p1", ("chair",), items[5].vector, "v2")
    store.add([moved])  # same key: replaced, not duplicated
    np.testing.assert_allclose(store.vector_of("p1"), items[5].vector, atol=1e-6)
    assert len(store.search(items[5].vector, k=12)) == 11


def test_milvus_collection_of_another_extractor_is_refused(tmp_path: Path) -> None:
    _milvus(tmp_path).close()
    other = Fingerprint("efficientnet-lite2", "test:weights", 260, DIM)
    with pytest.raises(IndexMismatchError, match="another extractor"):
        _milvus(tmp_path, other)
