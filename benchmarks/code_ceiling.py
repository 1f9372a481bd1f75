"""How much recall the vector codes alone allow, before any graph or inverted list loses more.

An ANN index on SQ8 or PQ codes can at best return what a brute-force scan of the same codes
returns. This scans every code (faiss flat-coded indexes: `SQ8`, `PQ160`, `OPQ..`) on the
real-feature replicated data of `search_bench.py --data ikea` and prints recall@5 against exact
float search — the ceiling of any index built on those codes — and, for a refine, the recall
after re-ranking the codes' top `5·k_factor` by the exact vectors. It also prints how close the
exact 5th and 6th neighbours are: when they differ by less than a code's error, no index on
those codes can tell them apart.

    nice -n 10 .venv/bin/python benchmarks/code_ceiling.py \
        --ikea-index /work/cache/ikea-lite0/current/vectors.faiss --size 200000 \
        --code SQ8 --code PQ160 --code OPQ160,PQ160
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from ikea_vectors import Replicator, read_vectors
from search_bench import exact_index, recall, stored_vectors


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def code_row(key: str, seconds: float, nbytes: int, rec: float, refined: dict[int, float]) -> str:
    refine = "  ".join(f"×{factor}: {value:.3f}" for factor, value in refined.items())
    return f"{key:<24}{seconds:>8.1f}{nbytes:>8}{rec:>10.3f}   {refine}"


def refined_recall(
    candidates: np.ndarray, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int
) -> float:
    """Recall@k after re-ranking each query's candidate ids by the exact inner product."""
    found = []
    for query, ids in zip(queries, candidates, strict=True):
        ids = ids[ids >= 0]
        scores = vectors[ids] @ query  # (c,)
        found.append(ids[np.argsort(-scores)[:k]])
    return recall(np.array(found), truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ikea-index", type=Path, required=True)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--code", action="append", default=[], help="faiss factory key")
    parser.add_argument("--k-factors", default="4,10,20", help="refine short-list factors")
    args = parser.parse_args()
    factors = [int(part) for part in args.k_factors.split(",")]
    source = Replicator.make(read_vectors(args.ikea_index), args.jitter, args.seed)
    queries = source.queries(args.queries, np.random.default_rng([args.seed, 0]))
    n, k = args.size, args.k
    flat, _ = exact_index(n, source, np.random.default_rng([args.seed, n]))
    scores, truth = flat.search(queries, k + 1)
    vectors = stored_vectors(flat)
    gap = scores[:, k - 1] - scores[:, k]  # exact 5th minus 6th score
    print(f"{n:,} × {source.dim} IKEA replicas (jitter {args.jitter}), {args.queries} queries")
    print(
        f"exact 5th score median {statistics.median(scores[:, k - 1]):.4f}; 5th − 6th gap: "
        f"median {statistics.median(gap):.2e}, p10 {np.percentile(gap, 10):.2e}"
    )
    truth = truth[:, :k]
    print(f"{'code':<24}{'train s':>8}{'bytes':>8}{'recall@5':>10}   after exact re-rank of 5·k")
    for key in args.code:
        log(f"training {key} ...")
        started = time.perf_counter()
        index = faiss.index_factory(source.dim, key, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors[: args.train_rows])
        seconds = time.perf_counter() - started
        index.add(vectors)
        _, found = index.search(queries, k * max(factors))
        refined = {
            f: refined_recall(found[:, : k * f], vectors, queries, truth, k) for f in factors
        }
        nbytes = faiss.serialize_index(index).nbytes // n
        print(code_row(key, seconds, nbytes, recall(found[:, :k], truth), refined), flush=True)
        del index


if __name__ == "__main__":
    main()
