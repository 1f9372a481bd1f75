"""Vector search at catalog scale: the index `choose_index` picks against exact Flat search.

For each size: build time, single-query latency (median, p95) and recall@5 of the chosen index
against exact search, on synthetic unit vectors. Indexes are built the way `index/build.py`
builds them (`faiss.index_factory(dim, key, METRIC_INNER_PRODUCT)`, train, add; `nprobe` from
the choice, set once as `CatalogIndex` does); a `PCA…` prefix projects without centring
(`train`).

The vectors imitate pooled CNN features of a catalog: a direction shared by all (pooled ReLU
features are non-negative, so any two images have cosine ≈ 0.3), a random centre per group of
`--kinds-per-group` product kinds and one per kind (`--per-kind` vectors each), a spread along
`--intrinsic` directions shared by every kind (pose, light, colour) and isotropic noise,
L2-normalised. The defaults were fitted to EfficientNet-Lite2 ImageNet features (260 px) of
the 2,042 IKEA photos (2,376 vectors with variants, from `snapfind evaluate`'s cache). At
that size the synthetic set has median cosine 0.81 / 0.74 / 0.60 to its 1st / 5th / 50th
neighbour (real 0.86 / 0.74 / 0.60), mean pair cosine 0.35 (0.35), covariance participation
ratio 40 (56), and IVF32 / IVF64 recall@5 at nprobe 2, 4 / 4, 16 of 0.85, 0.97 / 0.98, 1.00
(real 0.90, 0.97 / 0.94, 1.00): about as hard for IVF as the real features. `--group-weight
0` removes the groups: a far harder set for IVF (figures in benchmarks/README.md).
Queries are fresh draws (a shopper's photo is never a catalog image). How real features
behave at a million is unknown: read recall as a comparison between index kinds.

Memory: the exact index holds n·dim float32 (1M × 1280 = 4.8 GiB) and is the only full copy:
it is filled in place, and the ANN index trains on a prefix of it — as many rows as faiss
would subsample anyway (256 per list), which are a random sample since rows are i.i.d.

`--stream` keeps no exact index: the vectors are drawn again, chunk by chunk, for each candidate,
and the exact top-k of the queries is merged chunk by chunk as the first candidate is filled
(memory: the candidate and one chunk; 1M × 2560 fits). It has no Flat latency row.

    .venv/bin/python benchmarks/search_bench.py --sizes 10000,100000
    .venv/bin/python benchmarks/search_bench.py --sizes 1000000 --also 'IVF{nlist},SQ8'
"""

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from ikea_vectors import Replicator, read_vectors

from index.choice import choose_index, list_count
from index.probe_tuning import RunningTopK
from index.vector_writer import new_index, reserve, train_lists, training_rows

CHUNK = 65_536  # rows generated and added at a time
PLAIN_LISTS = "/faiss-lists"  # a candidate key's suffix: its lists cut by FAISS's own k-means


@dataclass(frozen=True)
class Mixture:
    """Groups of product kinds around a shared direction; `sample` draws unit vectors."""

    common: np.ndarray  # (D,) unit
    groups: np.ndarray  # (G, D) unit rows
    kinds: np.ndarray  # (K, D) unit rows
    group_of_kind: np.ndarray  # (K,) group index
    basis: np.ndarray  # (R, D) unit rows: the directions every product varies along
    args: argparse.Namespace

    @classmethod
    def make(cls, dim: int, n: int, args: argparse.Namespace, seed: int) -> "Mixture":
        """The mixture for a catalog of `n` vectors."""
        rng = np.random.default_rng(seed)
        kinds = max(1, n // args.per_kind)
        groups = max(1, kinds // args.kinds_per_group)
        return cls(
            unit_rows(rng.standard_normal((1, dim), dtype=np.float32))[0],
            unit_rows(rng.standard_normal((groups, dim), dtype=np.float32)),
            unit_rows(rng.standard_normal((kinds, dim), dtype=np.float32)),
            rng.integers(0, groups, kinds),
            unit_rows(rng.standard_normal((args.intrinsic, dim), dtype=np.float32)),
            args,
        )

    @property
    def dim(self) -> int:
        return self.kinds.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) float32 unit rows."""
        a, dim, intrinsic = self.args, self.dim, self.basis.shape[0]
        kind = rng.integers(0, len(self.kinds), n)
        coords = rng.standard_normal((n, intrinsic), dtype=np.float32)  # (n, R)
        points = a.kind_weight * self.kinds[kind]
        points += a.group_weight * self.groups[self.group_of_kind[kind]]
        points += (a.spread / intrinsic**0.5) * (coords @ self.basis)
        points += a.common * self.common
        points += (a.noise / dim**0.5) * rng.standard_normal((n, dim), dtype=np.float32)
        return unit_rows(points)


def mixture_arguments(parser: argparse.ArgumentParser) -> None:
    """The `Mixture`'s shape, as options (also `stream_build_bench.py --data mixture`)."""
    parser.add_argument("--per-kind", type=int, default=30, help="vectors per product kind")
    parser.add_argument("--kinds-per-group", type=int, default=10, help="kinds per group")
    parser.add_argument("--kind-weight", type=float, default=0.8, help="weight of a kind's centre")
    parser.add_argument("--group-weight", type=float, default=0.8, help="weight of a group's")
    parser.add_argument("--intrinsic", type=int, default=16, help="shared directions of spread")
    parser.add_argument("--spread", type=float, default=1.1, help="spread along them")
    parser.add_argument("--noise", type=float, default=0.4, help="isotropic noise")
    parser.add_argument("--common", type=float, default=1.1, help="weight of the shared direction")


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mib() -> float:
    """Resident memory of this process now (VmRSS: anonymous + file pages mapped in), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mapped(index: faiss.Index) -> tuple[faiss.Index, float]:
    """The index written to a file and read back memory-mapped (`IO_FLAG_MMAP_IFC`), as
    `CatalogIndex` opens a refine index: its codes stay on disk until a search touches them.
    Also the file's MiB (serializing in memory would need a second copy of the index)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.faiss"
        faiss.write_index(index, str(path))
        mib = path.stat().st_size / 2**20
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC), mib  # mapping outlives name


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (VmHWM), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def exact_index(
    n: int, mixture: "Mixture | Replicator", rng: np.random.Generator
) -> tuple[faiss.Index, float]:
    """A Flat inner-product index of n fresh vectors, and the seconds its `add` calls took.

    Its storage is sized once up front, so adding chunk by chunk never reallocates (a growing
    buffer would briefly need twice the memory).
    """
    dim = mixture.dim
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
    train(index, vectors[:train_rows])
    for start in range(0, len(vectors), CHUNK):
        index.add(vectors[start : start + CHUNK])
    ivf.nprobe = nprobe
    return index, time.perf_counter() - started


def train(index: faiss.Index, rows: np.ndarray, key: str = "") -> None:
    """Train `index` on (S, D) rows; a `PCA…` in front of it projects without centring.

    faiss's `PCAMatrix` subtracts the mean, which keeps L2 distances but not inner products: a
    centred projection ranks by ⟨x, q − mean⟩ (exact search after PCA1280 of 50k × 2560 IKEA
    replicas: recall@5 0.420 centred, 0.933 without the bias). `IndexPreTransform.train`
    then trains only what is still untrained: the index, on the projected rows. An inverted
    file's lists are cut as the product's writer cuts them (`train_lists`), or by FAISS's own
    k-means (a `key` ending in `PLAIN_LISTS`).
    """
    wrapper = faiss.downcast_index(index)
    if isinstance(wrapper, faiss.IndexPreTransform):
        projected = rows
        for step in range(wrapper.chain.size()):
            transform = faiss.downcast_VectorTransform(wrapper.chain.at(step))
            transform.train(projected)
            if isinstance(transform, faiss.PCAMatrix):
                faiss.copy_array_to_vector(np.zeros(transform.d_out, np.float32), transform.b)
            projected = transform.apply(projected)
    if not key.endswith(PLAIN_LISTS):
        train_lists(index, rows)
    index.train(rows)


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


def row(
    n: int, dim: int, key: str, nprobe: int, build: float, mib: float, lat: list[float], rec: float
) -> str:
    """One line of the table; `lat` in seconds per query."""
    return (
        f"{n:>9,} {dim:>5}  {key:<18}{nprobe or '-':>7}{build:>9.1f}{mib:>9.0f}"
        f"{statistics.median(lat) * 1000:>11.2f}{np.percentile(lat, 95) * 1000:>9.2f}{rec:>10.3f}"
    )


def bench_size(n: int, args: argparse.Namespace, source: "Mixture | Replicator") -> None:
    """Exact truth, then the index `choose_index` picks (and `--also` keys on its centroids)."""
    dim, k = source.dim, args.k
    queries = _queries(source, args)  # (Q, D)
    rng = np.random.default_rng([args.seed, n])
    log(f"[{n:,}] {args.data}: adding {n:,} × {dim} vectors to Flat ...")
    flat, flat_build = exact_index(n, source, rng)
    truth_ids, flat_lat = timed_search(flat, queries, k, args.search_threads)
    choice = choose_index(n, dim, args.budget_mb * 2**20)
    print(row(n, dim, "Flat (exact)", 0, flat_build, n * dim * 4 / 2**20, flat_lat, 1.0))
    if choice.key == "Flat":
        print(f"{'':>16}choose_index picks Flat: exact, nothing to compare", flush=True)
        return
    if choice.ef_search:  # a graph: no coarse centroids to share with --also
        log(f"[{n:,}] building {choice.key} ...")
        index, build, mib = built_candidate(choice.key, stored_vectors(flat), args.train_rows)
        faiss.ParameterSpace().set_index_parameters(index, choice.search_params)
        found, lat = timed_search(index, queries, k, args.search_threads)
        print(row(n, dim, choice.key + " *", 0, build, mib, lat, recall(found, truth_ids)))
        return
    log(f"[{n:,}] training and filling {choice.key} ...")
    vectors = stored_vectors(flat)
    index, build = ann_index(choice.key, vectors, choice.nprobe)
    faiss.ParameterSpace().set_index_parameters(index, choice.search_params)  # the re-rank's k
    probes = [choice.nprobe, *args.nprobes]
    mib = choice.bytes_estimate / 2**20
    for number, (nprobe, lat, rec) in enumerate(probe(index, probes, queries, truth_ids, args)):
        label = choice.key + (" *" if number == 0 else "")
        print(row(n, dim, label, nprobe, build, mib, lat, rec), flush=True)
    centroids = coarse_centroids(index)
    del index
    gc.collect()
    for template in args.also:
        key = template.format(nlist=len(centroids))
        log(f"[{n:,}] filling {key} on the same coarse centroids ...")
        extra, build = ann_index(key, vectors, choice.nprobe, centroids)
        mib = list_bytes(extra) / 2**20
        for number, (nprobe, lat, rec) in enumerate(probe(extra, probes, queries, truth_ids, args)):
            label = key + (" +" if number == 0 else "")
            print(row(n, dim, label, nprobe, build, mib, lat, rec), flush=True)
        del extra
        gc.collect()
    print("", flush=True)


@dataclass(frozen=True)
class Candidate:
    """A factory key and the search settings to try, e.g. `HNSW32,Flat:efSearch=16|efSearch=64`.

    Each setting is a faiss `ParameterSpace` string ("nprobe=32,k_factor=8"); `{nlist}` in the
    key becomes the product's list count (`index.choice.list_count`; a power of two near 4·√n
    before docs/scale.md's eighth round).
    """

    key: str
    settings: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str, n: int, dim: int) -> "Candidate":
        key, _, settings = spec.partition(":")
        return cls(
            key.format(nlist=list_count(n, dim)),
            tuple(settings.split("|")) if settings else ("",),
        )


def built_candidate(
    key: str, vectors: np.ndarray, train_rows: int, size: bool = True, ef_construction: int = 0
) -> tuple[faiss.Index, float, float]:
    """Train (on a prefix: rows are in random order) and fill `key`: (index, seconds, MiB;
    nan unless `size`). `ef_construction` (0: faiss's 40) widens an HNSW graph's build search."""
    started = time.perf_counter()
    index = new_index(vectors.shape[1], key.removesuffix(PLAIN_LISTS))
    if ef_construction:
        set_ef_construction(index, ef_construction)
    if not index.is_trained:
        rows = train_rows or training_rows(index, key)
        train(index, vectors[: min(len(vectors), rows)], key)
    reserve(index, len(vectors))  # as the product's writer does: no doubling while it fills
    for start in range(0, len(vectors), CHUNK):
        index.add(vectors[start : start + CHUNK])
    seconds = time.perf_counter() - started
    mib = faiss.serialize_index(index).nbytes / 2**20 if size else float("nan")  # RAM, ~
    return index, seconds, mib


def set_ef_construction(index: faiss.Index, ef: int) -> None:
    """efConstruction of the HNSW graph inside `index` (under a refine), before it is filled."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.base_index)
    if not isinstance(index, faiss.IndexHNSW):
        raise SystemExit("--ef-construction needs an HNSW candidate")
    index.hnsw.efConstruction = ef


CANDIDATE_HEADER = (
    f"{'vectors':>9} {'dim':>5} {'data':<9} {'index':<28}{'param':>22}{'build s':>9}"
    f"{'MiB':>7}{'median ms':>11}{'p95 ms':>9}{'recall@5':>10}"
)


def candidate_row(
    n: int,
    dim: int,
    data: str,
    key: str,
    param: str,
    build: float,
    mib: float,
    lat: list[float],
    rec: float,
) -> str:
    return (
        f"{n:>9,} {dim:>5} {data:<9} {key:<28}{param:>22}{build:>9.1f}{mib:>7.0f}"
        f"{statistics.median(lat) * 1000:>11.2f}{np.percentile(lat, 95) * 1000:>9.2f}{rec:>10.3f}"
    )


def bench_candidates(n: int, args: argparse.Namespace, source: "Mixture | Replicator") -> None:
    """Exact truth, then each candidate index at each value of its swept parameter."""
    dim, k = source.dim, args.k
    queries = _queries(source, args)
    if args.stream:  # the truth is found while the first candidate is filled
        running = TimedTopK(queries, k)
    else:
        log(f"[{n:,}] {args.data}: adding {n:,} × {dim} vectors to Flat ...")
        flat, flat_build = exact_index(n, source, np.random.default_rng([args.seed, n]))
        truth, flat_lat = timed_search(flat, queries, k, args.search_threads)
        print(
            candidate_row(
                n, dim, args.data, "Flat", "-", flat_build, n * dim * 4 / 2**20, flat_lat, 1.0
            ),
            flush=True,
        )
        vectors = stored_vectors(flat)
    for spec in args.candidate:
        candidate = Candidate.parse(spec, n, dim)
        log(f"[{n:,}] building {candidate.key} ...")
        if args.stream:
            first = running.ids[0, 0] < 0
            index, build = streamed_candidate(
                candidate.key, n, source, args, running if first else None
            )
            truth = running.ids
            if first:
                print(f"{'':>16}exact top-{k}, chunk by chunk: {running.seconds:.0f} s", flush=True)
            mib = faiss.serialize_index(index).nbytes / 2**20 if not args.mmap else float("nan")
        else:
            index, build, mib = built_candidate(
                candidate.key, vectors, args.train_rows, not args.mmap, args.ef_construction
            )
        before = rss_mib()
        if args.mmap:
            index, mib = mapped(index)
            gc.collect()
            before = rss_mib()
        for setting in candidate.settings:
            if setting:
                set_search(index, setting)
            found, lat = timed_search(index, queries, k, args.search_threads)
            param = setting or "-"
            print(
                candidate_row(
                    n, dim, args.data, candidate.key, param, build, mib, lat, recall(found, truth)
                ),
                flush=True,
            )
        if args.mmap:
            grown = rss_mib() - before
            print(f"{'':>16}memory-mapped: resident after the queries +{grown:.0f} MiB")
        del index
        gc.collect()
    print("", flush=True)


def set_search(index: faiss.Index, setting: str) -> None:
    """Apply a `ParameterSpace` string, plus `qb=N` (bits a RaBitQ query is quantized to: faiss
    4, and `ParameterSpace` does not know it)."""
    parts = setting.split(",")
    for part in [p for p in parts if p.startswith("qb=")]:
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.qb = int(part.removeprefix("qb="))
    rest = ",".join(p for p in parts if not p.startswith("qb="))
    if rest:
        faiss.ParameterSpace().set_index_parameters(index, rest)


class TimedTopK(RunningTopK):
    """The product's running exact top-k (index/probe_tuning.py), timed: a streamed run's truth."""

    seconds = 0.0

    def update(self, start: int, chunk: np.ndarray) -> None:
        started = time.perf_counter()
        super().update(start, chunk)
        self.seconds += time.perf_counter() - started


def drawn_chunks(n: int, source: "Mixture | Replicator", seed: int):
    """(start, (c, D) rows) of the n vectors (the draws of `exact_index`), identical each call."""
    rng = np.random.default_rng([seed, n])
    for start in range(0, n, CHUNK):
        yield start, source.sample(min(CHUNK, n - start), rng)


def streamed_candidate(
    key: str,
    n: int,
    source: "Mixture | Replicator",
    args: argparse.Namespace,
    truth: RunningTopK | None = None,
) -> tuple[faiss.Index, float]:
    """`key` trained on the first `--train-rows` draws, then filled chunk by chunk as they are
    drawn again (each chunk also goes to `truth`): memory is the index and one chunk.
    (index, seconds of training and adding: drawing the vectors is not the build's)."""
    index = new_index(source.dim, key.removesuffix(PLAIN_LISTS))
    if args.ef_construction:
        set_ef_construction(index, args.ef_construction)
    seconds = 0.0
    if not index.is_trained:
        wanted = args.train_rows or training_rows(index, key)
        sample = []
        for start, chunk in drawn_chunks(n, source, args.seed):
            sample.append(chunk)
            if start + len(chunk) >= wanted:
                break
        rows = np.concatenate(sample)[:wanted]
        del sample
        started = time.perf_counter()
        train(index, rows, key)
        seconds += time.perf_counter() - started
        del rows
    reserve(index, n)
    for start, chunk in drawn_chunks(n, source, args.seed):
        started = time.perf_counter()
        index.add(chunk)
        seconds += time.perf_counter() - started
        if truth is not None:
            truth.update(start, chunk)
    return index, seconds


def probe(
    index: faiss.Index,
    probes: list[int],
    queries: np.ndarray,
    truth: np.ndarray,
    args: argparse.Namespace,
) -> list[tuple[int, list[float], float]]:
    """(nprobe, seconds per query, recall@k) of an IVF index at each nprobe."""
    ivf = faiss.extract_index_ivf(index)
    results = []
    for nprobe in probes:
        ivf.nprobe = nprobe
        found, lat = timed_search(index, queries, args.k, args.search_threads)
        results.append((nprobe, lat, recall(found, truth)))
    return results


def _queries(source: "Mixture | Replicator", args: argparse.Namespace) -> np.ndarray:
    """(Q, D) the timed queries: fresh draws, or jittered held-out products (IKEA)."""
    rng = np.random.default_rng([args.seed, 0])
    if isinstance(source, Replicator):
        return source.queries(args.queries, rng)
    return source.sample(args.queries, rng)


def _source(n: int, args: argparse.Namespace) -> "Mixture | Replicator":
    if args.data == "synthetic":
        return Mixture.make(args.dim, n, args, args.seed)
    if args.ikea_index is None:
        raise SystemExit("--data ikea needs --ikea-index PATH/vectors.faiss")
    return Replicator.make(read_vectors(args.ikea_index), args.jitter, args.seed)


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the writer's own lines
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1280, help="vector length (B0 1280, B7 2560)")
    parser.add_argument("--sizes", type=int_list, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200, help="single queries timed per index")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query (recall@k)")
    parser.add_argument("--budget-mb", type=int, default=4096, help="choose_index RAM budget")
    mixture_arguments(parser)
    parser.add_argument("--nprobes", type=int_list, default=[], help="extra nprobe values to try")
    parser.add_argument(
        "--also", action="append", default=[], help="another IVF factory key, '{nlist}' filled in"
    )
    parser.add_argument("--threads", type=int, default=0, help="faiss threads; 0 = all")
    parser.add_argument(
        "--search-threads", type=int, default=0, help="faiss threads for queries; 0 = --threads"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        help="compare this index instead of choose_index's: 'KEY[:param=v1,v2]', e.g. "
        "'HNSW32,Flat:efSearch=16,64' or 'IVF{nlist},PQ64,RFlat:nprobe=32;k_factor=..'; "
        f"a key ending in {PLAIN_LISTS} cuts its lists by FAISS's own k-means, not the writer's",
    )
    parser.add_argument("--data", choices=("synthetic", "ikea"), default="synthetic")
    parser.add_argument(
        "--ikea-index", type=Path, help="vectors.faiss of an IKEA build (for --data ikea)"
    )
    parser.add_argument("--jitter", type=float, default=0.3, help="perturbation of IKEA copies")
    parser.add_argument(
        "--train-rows", type=int, default=0, help="rows to train on (0: as index build does)"
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="no exact index: truth and candidates from vectors drawn chunk by chunk (1M × 2560)",
    )
    parser.add_argument(
        "--ef-construction", type=int, default=0, help="HNSW build width (0: faiss's 40)"
    )
    parser.add_argument(
        "--mmap", action="store_true", help="search candidates memory-mapped from a file"
    )
    args = parser.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)

    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads "
        f"({args.search_threads or 'same'} for queries); {args.queries} "
        f"single queries, k={args.k}; budget {args.budget_mb} MiB"
    )
    if args.data == "ikea":
        print(
            f"IKEA features of {args.ikea_index}, copies jittered by {args.jitter}; queries "
            "are jittered held-out products; MiB = serialized index\n"
        )
    else:
        print(
            f"synthetic set: {args.per_kind} per kind, {args.kinds_per_group} kinds per group, "
            f"weights kind {args.kind_weight} group {args.group_weight} common {args.common}, "
            f"spread {args.spread} along {args.intrinsic} dims, noise {args.noise}\n"
            "* = the index choose_index picks (build includes k-means); + = same coarse "
            "centroids, k-means not counted in build\n"
        )
    if args.candidate:
        print(CANDIDATE_HEADER, flush=True)
        for n in args.sizes:
            bench_candidates(n, args, _source(n, args))
            gc.collect()
        print(f"peak resident memory: {peak_rss_gib():.1f} GiB")
        return
    print(HEADER, flush=True)
    for n in args.sizes:
        bench_size(n, args, _source(n, args))
        gc.collect()
    print(f"peak resident memory: {peak_rss_gib():.1f} GiB")


if __name__ == "__main__":
    main()
