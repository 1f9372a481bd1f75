"""Peak memory of a streamed index build against the size of the index it writes.

Default (`--stage build`): what `index/build.py` does once the photos are embedded, on `--count`
synthetic unit vectors put in a real vector cache (SQLite, chunk by chunk): the index streamed
from the cache by `write_from_cache` and the no-match threshold calibrated from the cache by
`no_match_from_cache`, the two calls the build makes. The process's peak RSS (VmHWM) is read
after filling the cache (the baseline) and after the build; the ratio that counts is peak over
the index file. `--stage writer` measures `write_index` alone on chunks drawn on the fly.

    nice -n 10 .venv/bin/python benchmarks/stream_build_bench.py --stage writer --count 1000000 \
        --key IVF2048_HNSW32,SQ8
"""

import argparse
import hashlib
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from search_bench import Mixture, mixture_arguments

from index import vector_writer
from index.cache_calibration import no_match_from_cache
from index.choice import IndexChoice, choose_index
from index.vector_cache import VectorCache
from index.vector_writer import write_from_cache, write_index
from retrieval.extractor import Fingerprint
from retrieval.vector_chunks import CHUNK


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_chunks(count: int, dim: int, mixture: Mixture | None = None):
    """Unit rows, isotropic or drawn from `mixture` (its shared directions make the writer
    screen two cuts of its lists, `index.list_partition`)."""

    def chunks():
        for number, start in enumerate(range(0, count, CHUNK)):
            rng = np.random.default_rng(number)
            size = min(CHUNK, count - start)
            if mixture is not None:
                yield mixture.sample(size, rng)
                continue
            rows = rng.standard_normal((size, dim), dtype=np.float32)
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            yield rows  # (c, D)

    return chunks


def fill_cache(
    folder: Path, fingerprint: Fingerprint, count: int, mixture: Mixture | None = None
) -> list[str]:
    """`count` synthetic vectors in a vector cache, keyed like content hashes; their keys."""
    cache = VectorCache(folder, fingerprint)
    keys: list[str] = []
    try:
        start = 0
        for chunk in synthetic_chunks(count, fingerprint.dim, mixture)():
            part = cache_keys(start + len(chunk), start)
            cache.put_many(dict(zip(part, chunk, strict=True)))
            keys += part
            start += len(chunk)
    finally:
        cache.close()
    return keys


def cache_keys(stop: int, start: int = 0) -> list[str]:
    """The keys `fill_cache` gives vectors `start .. stop`, in vector order."""
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, stop)]


def mixture(args: argparse.Namespace) -> Mixture | None:
    """The catalog `--data mixture` draws from; made only where vectors are drawn, so a run on
    a kept `--cache` holds none of it (its kinds' centres: 160 MiB at 1M)."""
    return Mixture.make(args.dim, args.count, args, 0) if args.data == "mixture" else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--key", default="", help="faiss factory key (default: choose_index's)")
    parser.add_argument("--budget-mb", type=int, default=4096, help="choose_index RAM budget")
    parser.add_argument("--stage", choices=("build", "writer"), default="build")
    parser.add_argument(
        "--data",
        choices=("isotropic", "mixture"),
        default="isotropic",
        help="mixture: search_bench.py's synthetic catalog, whose lists the writer screens",
    )
    mixture_arguments(parser)
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the vector cache here: filled on the first run, reused by the next (same "
        "--count, --dim), whose process then holds nothing the filling left behind",
    )
    parser.add_argument(
        "--kmeans-iterations",
        type=int,
        default=0,
        help="k-means iterations (0: the writer's); memory does not depend on them, time does",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the writer's own lines
    if args.kmeans_iterations:
        vector_writer.KMEANS_ITERATIONS = args.kmeans_iterations
    choice = choose_index(args.count, args.dim, args.budget_mb * 2**20)
    if args.key:
        choice = IndexChoice(args.key, 0, 0)
    print(f"{choice.key} ({choice.search_params or 'no search settings'})", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.faiss"
        if args.stage == "writer":
            before = peak_rss_mib()
            started = time.perf_counter()
            chunks = synthetic_chunks(args.count, args.dim, mixture(args))
            written = write_index(path, choice.key, args.count, chunks, choice.search_params)
            threshold = None
        else:
            fingerprint = Fingerprint("synthetic", "bench", 224, args.dim)
            cache = args.cache or Path(folder) / "cache"
            started = time.perf_counter()
            if args.cache and args.cache.is_dir():
                keys = cache_keys(args.count)
            else:
                keys = fill_cache(cache, fingerprint, args.count, mixture(args))
                print(f"cache filled in {time.perf_counter() - started:.0f} s", flush=True)
            before = peak_rss_mib()
            started = time.perf_counter()
            written = write_from_cache(path, choice, cache, fingerprint, keys)
            seconds = time.perf_counter() - started
            print(f"index written in {seconds:.0f} s, peak {peak_rss_mib():.0f} MiB", flush=True)
            threshold = no_match_from_cache(cache, fingerprint, keys)
            print(
                f"threshold {threshold} calibrated in "
                f"{time.perf_counter() - started - seconds:.0f} s",
                flush=True,
            )
        print(f"{written}", flush=True)
        seconds = time.perf_counter() - started
        size = path.stat().st_size / 2**20
    peak = peak_rss_mib()
    print(
        f"{args.count:,} x {args.dim} {choice.key} ({args.stage}): {seconds:.0f} s, "
        f"index file {size:.0f} MiB, peak RSS {peak:.0f} MiB (before {before:.0f} MiB): "
        f"peak/index {peak / size:.2f}, (peak - before)/index {(peak - before) / size:.2f}"
    )


if __name__ == "__main__":
    main()
