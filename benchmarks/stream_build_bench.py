"""Peak memory of a streamed index build against the size of the index it writes.

`index.vector_writer.write_index` reads vectors chunk by chunk from a re-readable source (in
the product, the vector cache); here the source draws the same synthetic unit rows on every
pass (seeded per chunk), so only the writer's own memory shows. Prints the index file size,
the process's peak RSS (VmHWM) before and after the build, and their ratio.

    nice -n 10 .venv/bin/python benchmarks/stream_build_bench.py --count 1000000 --key SQ8
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from index.vector_writer import CHUNK, write_index


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--key", default="SQ8", help="faiss factory key")
    args = parser.parse_args()
    before = peak_rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.faiss"
        started = time.perf_counter()
        index = write_index(path, args.key, args.count, synthetic_chunks(args.count, args.dim))
        seconds = time.perf_counter() - started
        size = path.stat().st_size / 2**20
        del index
    peak = peak_rss_mib()
    print(
        f"{args.count:,} x {args.dim} {args.key}: build {seconds:.0f} s, "
        f"index file {size:.0f} MiB, "
        f"peak RSS {peak:.0f} MiB (before build {before:.0f} MiB): peak/index {peak / size:.2f}, "
        f"(peak - before)/index {(peak - before) / size:.2f}"
    )


if __name__ == "__main__":
    main()
