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
import tempfile
import time
from pathlib import Path

import numpy as np

from index.cache_calibration import no_match_from_cache
from index.choice import IndexChoice
from index.vector_cache import VectorCache
from index.vector_writer import write_from_cache, write_index
from retrieval.extractor import Fingerprint
from retrieval.vector_chunks import CHUNK


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_chunks(count: int, dim: int):
    def chunks():
        for number, start in enumerate(range(0, count, CHUNK)):
            rng = np.random.default_rng(number)
            rows = rng.standard_normal((min(CHUNK, count - start), dim), dtype=np.float32)
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            yield rows  # (c, D)

    return chunks


def fill_cache(folder: Path, fingerprint: Fingerprint, count: int) -> list[str]:
    """`count` synthetic vectors in a vector cache, keyed like content hashes; their keys."""
    cache = VectorCache(folder, fingerprint)
    keys: list[str] = []
    try:
        start = 0
        for chunk in synthetic_chunks(count, fingerprint.dim)():
            part = [
                hashlib.sha256(str(i).encode()).hexdigest()
                for i in range(start, start + len(chunk))
            ]
            cache.put_many(dict(zip(part, chunk, strict=True)))
            keys += part
            start += len(chunk)
    finally:
        cache.close()
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--key", default="SQ8", help="faiss factory key")
    parser.add_argument("--params", default="", help="search settings kept in the file")
    parser.add_argument("--stage", choices=("build", "writer"), default="build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.faiss"
        if args.stage == "writer":
            before = peak_rss_mib()
            started = time.perf_counter()
            write_index(path, args.key, args.count, synthetic_chunks(args.count, args.dim))
            threshold = None
        else:
            fingerprint = Fingerprint("synthetic", "bench", 224, args.dim)
            started = time.perf_counter()
            keys = fill_cache(Path(folder) / "cache", fingerprint, args.count)
            print(f"cache filled in {time.perf_counter() - started:.0f} s", flush=True)
            before = peak_rss_mib()
            started = time.perf_counter()
            choice = IndexChoice(args.key, 0, 0)
            write_from_cache(path, choice, Path(folder) / "cache", fingerprint, keys)
            written = time.perf_counter() - started
            threshold = no_match_from_cache(Path(folder) / "cache", fingerprint, keys)
            print(
                f"index written in {written:.0f} s, threshold {threshold} calibrated in "
                f"{time.perf_counter() - started - written:.0f} s",
                flush=True,
            )
        seconds = time.perf_counter() - started
        size = path.stat().st_size / 2**20
    peak = peak_rss_mib()
    print(
        f"{args.count:,} x {args.dim} {args.key} ({args.stage}): {seconds:.0f} s, "
        f"index file {size:.0f} MiB, peak RSS {peak:.0f} MiB (before {before:.0f} MiB): "
        f"peak/index {peak / size:.2f}, (peak - before)/index {(peak - before) / size:.2f}"
    )


if __name__ == "__main__":
    main()
