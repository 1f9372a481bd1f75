"""The same catalog in FAISS (embedded, as served) and in Milvus Lite: same answers? how fast?

Every catalog photo's stored vector is a query: the top-k products of `CatalogIndex.search`
on an exact (Flat) release against `MilvusStore.search` with an exact (FLAT) Milvus index,
filled from the same vectors. Prints agreement (same ids in the same order; same id sets) and
single-query latency of both, one query at a time as the bot asks.

    .venv/bin/python benchmarks/milvus_compare.py --index /work/cache/ikea-lite0 \\
        --milvus /tmp/ikea-milvus.db
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from retrieval.index_store import open_index
from retrieval.milvus_store import MilvusStore
from retrieval.results import Page
from retrieval.vector_store import StoredVector


def stored_vectors(index) -> list[StoredVector]:
    """Every image vector of a release, keyed `<product id>#<n>`, with its product's categories."""
    owners = index.store.product_of_vector  # (V,) product row per vector
    products = index.store.get(list(range(len(index.store))))
    count: dict[int, int] = {}
    items = []
    for vector_id, row in enumerate(owners.tolist()):
        number = count[row] = count.get(row, -1) + 1
        product = products[row]
        vector = index._vectors.reconstruct(vector_id)
        items.append(StoredVector(f"{product.id}#{number}", product.id, product.categories, vector))
    return items


def timed(search, queries: list[np.ndarray]) -> tuple[list[list[str]], list[float]]:
    answers, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        answers.append(search(query))
        seconds.append(time.perf_counter() - started)
    return answers, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an exact (Flat) index dir")
    parser.add_argument("--milvus", default="/tmp/snapfind-milvus-compare.db", help="Lite file")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--tie", type=float, default=1e-4, help="scores this close are a tie")
    args = parser.parse_args()
    index = open_index(args.index)
    if index.manifest.index_key != "Flat":
        raise SystemExit(f"{args.index} is {index.manifest.index_key}, not exact (Flat)")
    items = stored_vectors(index)
    store = MilvusStore(args.milvus, "compare", index.manifest.fingerprint, create=True)
    started = time.perf_counter()
    for start in range(0, len(items), 500):
        store.add(items[start : start + 500])
    fill = time.perf_counter() - started
    queries = [item.vector for item in items]
    faiss_hits, faiss_s = timed(
        lambda q: [(h.product.id, h.score) for h in index.search(q, Page(args.k))], queries
    )
    milvus_hits, milvus_s = timed(
        lambda q: [(h.product_id, h.score) for h in store.search(q, k=args.k)], queries
    )
    pairs = list(zip(faiss_hits, milvus_hits, strict=True))
    same_order = sum([p for p, _ in a] == [p for p, _ in b] for a, b in pairs)
    same_set = sum({p for p, _ in a} == {p for p, _ in b} for a, b in pairs)
    # a different product at a rank with the same score is a tie (duplicate photos), not a miss
    gaps = [max(abs(x - y) for (_, x), (_, y) in zip(a, b, strict=True)) for a, b in pairs]
    same_scores = sum(gap <= args.tie for gap in gaps)
    n = len(queries)
    print(
        f"{n} catalog photos ({len(index)} products) as queries, top-{args.k}; Milvus filled in "
        f"{fill:.1f} s"
    )
    print(f"same top-{args.k}, same order: {same_order}/{n}; same set: {same_set}/{n}")
    print(
        f"same score at every rank (within {args.tie}; differences are then ties): "
        f"{same_scores}/{n}; largest score difference {max(gaps):.2e}"
    )
    print(f"{'store':<28}{'median ms':>10}{'p95 ms':>9}")
    for name, seconds in (("FAISS Flat (embedded)", faiss_s), ("Milvus Lite FLAT", milvus_s)):
        print(
            f"{name:<28}{statistics.median(seconds) * 1e3:>10.2f}"
            f"{np.percentile(seconds, 95) * 1e3:>9.2f}"
        )
    store.close()
    index.close()


if __name__ == "__main__":
    main()
