"""Vector search at catalog scale: the index `choose_index` picks against exact Flat search.

For each size: build time, single-query latency (median, p95) and recall@5 of the chosen index
against exact search, on synthetic unit vectors. Indexes are built the way `index/build.py`
builds them (`faiss.index_factory(dim, key, METRIC_INNER_PRODUCT)`, train, add; `nprobe` from
the choice, set once as `CatalogIndex` does).

The vectors are a Gaussian mixture with low intrinsic dimension, shaped like CNN features of a
catalog: `--clusters` product kinds (random unit centres), each point its centre plus a
`--intrinsic`-dimensional spread shared by all clusters plus a little isotropic noise,
L2-normalised. Queries are fresh draws from the same mixture (a shopper's photo is never a
catalog image). Recall on real features will differ; the ranking of index kinds should not.

Memory: the exact index holds n·dim float32 (1M × 1280 = 4.8 GiB) and is the only full copy:
it is filled in place, and the ANN index trains on a prefix of it — as many rows as faiss
would subsample anyway (256 per list), which are a random sample since rows are i.i.d.

    .venv/bin/python benchmarks/search_bench.py --sizes 10000,100000
    .venv/bin/python benchmarks/search_bench.py --sizes 1000000 --also 'IVF{nlist},SQ8'
"""

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from index.choice import choose_index

CHUNK = 65_536  # rows generated and added at a time


@dataclass(frozen=True)
class Mixture:
    """Cluster centres and a shared low-dimensional spread; `sample` draws unit vectors."""

    centres: np.ndarray  # (C, D) unit rows
    basis: np.ndarray  # (R, D) unit rows
    spread: float
    noise: float

    @classmethod
    def make(cls, dim: int, clusters: int, intrinsic: int, spread: float, noise: float, seed: int):
        rng = np.random.default_rng(seed)
        centres = unit_rows(rng.standard_normal((clusters, dim), dtype=np.float32))
        basis = unit_rows(rng.standard_normal((intrinsic, dim), dtype=np.float32))
        return cls(centres, basis, spread, noise)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) float32 unit rows."""
        dim, intrinsic = self.centres.shape[1], self.basis.shape[0]
        labels = rng.integers(0, len(self.centres), n)
        coords = rng.standard_normal((n, intrinsic), dtype=np.float32)  # (n, R)
        points = self.centres[labels] + (self.spread / intrinsic**0.5) * (coords @ self.basis)
        points += (self.noise / dim**0.5) * rng.standard_normal((n, dim), dtype=np.float32)
        return unit_rows(points)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (VmHWM), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def exact_index(n: int, mixture: Mixture, rng: np.random.Generator) -> tuple[faiss.Index, float]:
    """A Flat inner-product index of n fresh vectors, and the seconds its `add` calls took.

    Its storage is sized once up front, so adding chunk by chunk never reallocates (a growing
    buffer would briefly need twice the memory).
    """
    dim = mixture.centres.shape[1]
    flat = faiss.index_factory(dim, "Flat", faiss.METRIC_INNER_PRODUCT)
    flat.codes.resize(n * dim * 4)  # reserve n rows of float32, then empty: capacity stays
    flat.codes.resize(0)
    seconds = 0.0
    for start in range(0, n, CHUNK):
        chunk = mixture.sample(min(CHUNK, n - start), rng)
        started = time.perf_counter()
        flat.add(chunk)
        seconds += time.perf_counter() - started
    return flat, seconds


def stored_vectors(flat: faiss.Index) -> np.ndarray:
    """(n, D) float32 view of a Flat index's storage; no copy."""
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


def ann_index(
    key: str, vectors: np.ndarray, nprobe: int, centroids: np.ndarray | None = None
) -> tuple[faiss.Index, float]:
    """Train and fill an IVF index; with `centroids`, its coarse quantizer is not retrained."""
    started = time.perf_counter()
    index = faiss.index_factory(vectors.shape[1], key, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    if centroids is not None:
        ivf.quantizer.add(centroids)  # a trained quantizer with nlist entries skips k-means
    train_rows = min(len(vectors), ivf.cp.max_points_per_centroid * ivf.nlist)
    index.train(vectors[:train_rows])
    for start in range(0, len(vectors), CHUNK):
        index.add(vectors[start : start + CHUNK])
    ivf.nprobe = nprobe
    return index, time.perf_counter() - started


def coarse_centroids(index: faiss.Index) -> np.ndarray:
    ivf = faiss.extract_index_ivf(index)
    return ivf.quantizer.reconstruct_n(0, ivf.nlist)


def list_bytes(index: faiss.Index) -> int:
    """Bytes of an IVF index's inverted lists (codes + ids) and centroids, without copying it."""
    ivf = faiss.extract_index_ivf(index)
    return ivf.invlists.compute_ntotal() * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4


def timed_search(
    index: faiss.Index, queries: np.ndarray, k: int, threads: int
) -> tuple[np.ndarray, list[float]]:
    """One query at a time, as the bot asks: (Q, k) ids and seconds per query.

    `threads` (0: as for building) sets faiss's OpenMP team for the queries only.
    """
    ids = np.empty((len(queries), k), dtype=np.int64)
    seconds = []
    build_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads or build_threads)
    for row in range(len(queries)):
        started = time.perf_counter()
        _, found = index.search(queries[row : row + 1], k)
        seconds.append(time.perf_counter() - started)
        ids[row] = found[0]
    faiss.omp_set_num_threads(build_threads)
    return ids, seconds


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k that the approximate top-k also returns."""
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


HEADER = (
    f"{'vectors':>9} {'dim':>5}  {'index':<18}{'nprobe':>7}{'build s':>9}{'est MiB':>9}"
    f"{'median ms':>11}{'p95 ms':>9}{'recall@5':>10}"
)


def row(n: int, dim: int, key: str, nprobe: int, build: float, mib: float, lat, rec) -> str:
    return (
        f"{n:>9,} {dim:>5}  {key:<18}{nprobe or '-':>7}{build:>9.1f}{mib:>9.0f}"
        f"{statistics.median(lat) * 1000:>11.2f}{np.percentile(lat, 95) * 1000:>9.2f}{rec:>10.3f}"
    )


def bench_size(n: int, args: argparse.Namespace, mixture: Mixture, queries: np.ndarray) -> None:
    dim, k = args.dim, args.k
    rng = np.random.default_rng([args.seed, n])
    log(f"[{n:,}] generating and adding {n:,} × {dim} vectors to Flat ...")
    flat, flat_build = exact_index(n, mixture, rng)
    truth_ids, flat_lat = timed_search(flat, queries, k, args.search_threads)
    choice = choose_index(n, dim, args.budget_mb * 2**20)
    print(row(n, dim, "Flat (exact)", 0, flat_build, n * dim * 4 / 2**20, flat_lat, 1.0))
    if choice.key == "Flat":
        print(f"{'':>16}choose_index picks Flat: exact, nothing to compare", flush=True)
        return
    log(f"[{n:,}] training and filling {choice.key} ...")
    vectors = stored_vectors(flat)
    index, build = ann_index(choice.key, vectors, choice.nprobe)
    found, lat = timed_search(index, queries, k, args.search_threads)
    mib = choice.bytes_estimate / 2**20
    print(row(n, dim, choice.key + " *", choice.nprobe, build, mib, lat, recall(found, truth_ids)))
    ivf = faiss.extract_index_ivf(index)
    for nprobe in args.nprobes:
        ivf.nprobe = nprobe
        found, lat = timed_search(index, queries, k, args.search_threads)
        print(row(n, dim, choice.key, nprobe, build, mib, lat, recall(found, truth_ids)))
    centroids = coarse_centroids(index)
    del index, ivf
    gc.collect()
    for template in args.also:
        key = template.format(nlist=len(centroids))
        log(f"[{n:,}] filling {key} on the same coarse centroids ...")
        extra, build = ann_index(key, vectors, choice.nprobe, centroids)
        found, lat = timed_search(extra, queries, k, args.search_threads)
        mib = list_bytes(extra) / 2**20
        print(row(n, dim, key + " +", choice.nprobe, build, mib, lat, recall(found, truth_ids)))
        del extra
        gc.collect()
    print("", flush=True)


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1280, help="vector length (B0 1280, B7 2560)")
    parser.add_argument("--sizes", type=int_list, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200, help="single queries timed per index")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query (recall@k)")
    parser.add_argument("--budget-mb", type=int, default=4096, help="choose_index RAM budget")
    parser.add_argument("--clusters", type=int, default=1000, help="mixture components")
    parser.add_argument("--intrinsic", type=int, default=32, help="dimensions of the spread")
    parser.add_argument("--spread", type=float, default=1.0, help="spread around a centre")
    parser.add_argument("--noise", type=float, default=0.25, help="isotropic noise")
    parser.add_argument("--nprobes", type=int_list, default=[], help="extra nprobe values to try")
    parser.add_argument(
        "--also", action="append", default=[], help="another IVF factory key, '{nlist}' filled in"
    )
    parser.add_argument("--threads", type=int, default=0, help="faiss threads; 0 = all")
    parser.add_argument(
        "--search-threads", type=int, default=0, help="faiss threads for queries; 0 = --threads"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)

    mixture = Mixture.make(
        args.dim, args.clusters, args.intrinsic, args.spread, args.noise, args.seed
    )
    queries = mixture.sample(args.queries, np.random.default_rng([args.seed, 0]))  # (Q, D)
    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads "
        f"({args.search_threads or 'same'} for queries); {args.queries} "
        f"single queries, k={args.k}; budget {args.budget_mb} MiB; mixture of {args.clusters} "
        f"clusters, intrinsic dim {args.intrinsic}, spread {args.spread}, noise {args.noise}\n"
        "* = the index choose_index picks (build includes k-means); + = same coarse centroids, "
        "k-means not counted in build\n"
    )
    print(HEADER, flush=True)
    for n in args.sizes:
        bench_size(n, args, mixture, queries)
        gc.collect()
    print(f"peak resident memory: {peak_rss_gib():.1f} GiB")


if __name__ == "__main__":
    main()
