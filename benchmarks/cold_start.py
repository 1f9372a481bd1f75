"""Cold start of `snapfind`: seconds from launching the command to its answer, per variant.

Each variant is a checkout of snapfind (its code is put first on PYTHONPATH) and the words of
one command; rounds interleave the variants, so load on the machine weighs on all alike, and
the table gives the median and the ratio to the first variant. Also prints how long the same
interpreter takes to import TensorFlow alone, the floor of any command that loads a model.

    # today vs an older checkout (whose search still needed the extractor options)
    git worktree add /tmp/snapfind-before 33643c8
    .venv/bin/python benchmarks/cold_start.py --index /tmp/idx-lite0 --photo photo.jpg \\
        --variant "after=.:search {photo} --index {index}" \\
        --variant "before=/tmp/snapfind-before:search {photo} --index {index} \\
            --backbone efficientnet-lite0"
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    label: str
    checkout: Path
    words: tuple[str, ...]


def parse_variant(text: str, fill: dict[str, str]) -> Variant:
    """`label=CHECKOUT:command words` with {photo} and {index} filled in."""
    label, rest = text.split("=", 1)
    checkout, command = rest.split(":", 1)
    return Variant(label, Path(checkout).resolve(), tuple(command.format(**fill).split()))


def time_once(python: str, variant: Variant) -> float:
    """Seconds of one run; a failing run stops the benchmark with its output."""
    env = os.environ | {"PYTHONPATH": str(variant.checkout)}
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-m", "snapfind", *variant.words],
        capture_output=True,
        text=True,
        env=env,
        cwd=variant.checkout,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{variant.label} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def time_import(python: str, module: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", f"import {module}"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="label=CHECKOUT:words")
    parser.add_argument("--index", default="", help="fills {index} in the command words")
    parser.add_argument("--photo", default="", help="fills {photo} in the command words")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    fill = {"index": str(Path(args.index).resolve()), "photo": str(Path(args.photo).resolve())}
    variants = [parse_variant(text, fill) for text in args.variant]
    times: dict[str, list[float]] = {v.label: [] for v in variants}
    tensorflow: list[float] = []
    for round_number in range(args.rounds):
        for variant in variants:
            times[variant.label].append(time_once(args.python, variant))
        tensorflow.append(time_import(args.python, "tensorflow"))
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    first = statistics.median(times[variants[0].label])
    print(f"load average {load:.1f}; {args.rounds} interleaved rounds\n")
    print("| variant | command | median s | min s | ratio to first |")
    print("|---|---|---:|---:|---:|")
    for variant in variants:
        median = statistics.median(times[variant.label])
        print(
            f"| {variant.label} | `snapfind {' '.join(variant.words[:1])} …` | {median:.2f} "
            f"| {min(times[variant.label]):.2f} | {median / first:.2f} |"
        )
    print(
        f"| (floor) | `python -c 'import tensorflow'` | {statistics.median(tensorflow):.2f} "
        f"| {min(tensorflow):.2f} | {statistics.median(tensorflow) / first:.2f} |"
    )


if __name__ == "__main__":
    main()
