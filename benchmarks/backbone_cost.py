"""What one query image costs on this CPU, per backbone: the figures behind docs/backbones.md.

Runs the product's own `Extractor` (compiled once, random weights: cost does not depend on
the weight values) on one prepared image at a time, as the bot does, and prints the median of
`--runs` timed calls after a warm-up. Other load on the machine inflates every figure alike.

    .venv/bin/python benchmarks/backbone_cost.py
    .venv/bin/python benchmarks/backbone_cost.py efficientnet-lite0:224 resnet50:224 --runs 9
"""

import argparse
import statistics
import time

import numpy as np

from retrieval.tf_runtime import configure_tensorflow

DEFAULT = ("efficientnet-lite0:224", "efficientnet-lite2:260", "efficientnetb7:600")


def measure(backbone: str, size: int, runs: int) -> dict[str, float]:
    """Build, warm up and time one backbone; times in seconds."""
    from retrieval.extractor import Extractor

    started = time.perf_counter()
    extractor = Extractor(backbone, weights="none", input_size=size)
    built = time.perf_counter() - started
    warmup = extractor.warmup()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    batch = extractor.prepare([image])  # (1, S, S, 3): resizing is not timed
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        extractor.embed_prepared(batch)
        timings.append(time.perf_counter() - started)
    return {
        "params": extractor.param_count,
        "dim": extractor.fingerprint.dim,
        "build": built,
        "warmup": warmup,
        "median": statistics.median(timings),
        "min": min(timings),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbones", nargs="*", default=DEFAULT, help="NAME:SIZE (resnet50:224)")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per backbone")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads; 0 = all")
    args = parser.parse_args(argv)
    configure_tensorflow(threads=args.threads)
    rows = []
    for spec in args.backbones:
        name, _, size = spec.partition(":")
        rows.append((name, int(size), measure(name, int(size), args.runs)))
    print(
        f"{'backbone':<20}{'px':>5}{'dim':>6}{'params':>12}{'build s':>9}{'ms/image':>10}"
        f"{'min ms':>9}"
    )
    for name, size, m in rows:
        print(
            f"{name:<20}{size:>5}{m['dim']:>6.0f}{m['params']:>12,.0f}{m['build']:>9.1f}"
            f"{m['median'] * 1000:>10.0f}{m['min'] * 1000:>9.0f}"
        )
    base = rows[0][2]["median"]
    for name, size, m in rows[1:]:
        print(f"{name}@{size} costs {m['median'] / base:.0f}x {rows[0][0]}@{rows[0][1]}")


if __name__ == "__main__":
    main()
