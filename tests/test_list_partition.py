"""Inverted lists cut past the directions every product varies along, where it keeps neighbours."""

import faiss
import numpy as np

from index import vector_writer
from index.list_partition import cut_lists, projected_out, shared_directions

DIM, SHARED = 32, 4


def _catalog(spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(20k, DIM) unit rows: 2,000 products, each photographed 10 times along SHARED directions
    common to all (pose, light) by `spread`; and the (SHARED, DIM) directions."""
    rng = np.random.default_rng(seed)
    products = rng.standard_normal((2000, DIM)) / DIM**0.5
    shared = np.linalg.qr(rng.standard_normal((DIM, SHARED)))[0].T
    product = rng.integers(0, len(products), 20_000)
    rows = products[product] + spread * rng.standard_normal((len(product), SHARED)) @ shared
    rows += 0.1 * rng.standard_normal(rows.shape) / DIM**0.5
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), shared


def _recall(lists_from: str, rows: np.ndarray, nprobe: int = 2) -> float:
    """recall@5 of 200 held-out rows against exact search, in IVF128 lists cut by FAISS's own
    k-means ("faiss") or by the writer's (`train_lists`)."""
    queries, rows = rows[:200], rows[200:]
    _, truth = faiss.knn(queries, rows, 5, metric=faiss.METRIC_INNER_PRODUCT)
    index = vector_writer.new_index(DIM, "IVF128,Flat")
    if lists_from == "writer":
        vector_writer.train_lists(index, rows)
    index.train(rows)
    index.add(rows)
    faiss.extract_index_ivf(index).nprobe = nprobe
    _, found = index.search(queries, 5)
    return float(np.mean([len(set(f) & set(t)) / 5 for f, t in zip(found, truth, strict=True)]))


def test_the_directions_every_product_varies_along_are_found() -> None:
    rows, shared = _catalog(spread=0.3)
    found = shared_directions(rows)
    assert found.shape == (SHARED, DIM)
    assert np.linalg.norm(found @ shared.T, axis=0).min() > 0.99  # the same subspace


def test_a_smooth_spectrum_or_one_with_nothing_left_has_none() -> None:
    rng = np.random.default_rng(1)
    smooth = rng.standard_normal((5000, DIM)) * 0.97 ** np.arange(DIM)  # real features' kind
    assert len(shared_directions(smooth.astype(np.float32))) == 0
    flat = rng.standard_normal((5000, 3)) @ rng.standard_normal((3, DIM))  # all in 3 directions
    assert len(shared_directions(flat.astype(np.float32))) == 0


def test_projected_out_is_undone_on_exit() -> None:
    rows, shared = _catalog(spread=0.3)
    before = rows.copy()
    with projected_out(rows, shared.astype(np.float32)) as inside:
        assert inside is rows and np.abs(rows @ shared.T).max() < 1e-5
    np.testing.assert_allclose(rows, before, atol=1e-6)


def test_lists_follow_the_products_past_their_shared_directions() -> None:
    rows, _ = _catalog(spread=0.3)
    assert _recall("faiss", rows) < 0.5  # the lists cut pose: a product's photos spread out
    assert _recall("writer", rows) > 0.85


def test_where_the_shared_directions_decide_the_neighbours_the_plain_cut_stays() -> None:
    rows, _ = _catalog(spread=0.8)  # pose now outweighs the product: neighbours share it
    assert len(shared_directions(rows)) == SHARED
    plain = vector_writer.new_index(DIM, "IVF128,Flat")
    plain.train(rows)
    ours = vector_writer.new_index(DIM, "IVF128,Flat")
    cut_lists(faiss.extract_index_ivf(ours), rows)  # the screen projects rows in place, undone
    ours_lists, plain_lists = (
        faiss.extract_index_ivf(i).quantizer.search(rows, 1)[1] for i in (ours, plain)
    )
    assert np.mean(ours_lists == plain_lists) > 0.999  # FAISS's own cut, to float rounding
