"""Extractor cost on this CPU: query latency, batch throughput, warm-up and resident memory.

Uses the product's own `Extractor` (compiled once). Weights `none` cost the same per call as
ImageNet weights: the work does not depend on the values. TensorFlow reads oneDNN at import,
so `--onednn both` measures each setting in a fresh subprocess and prints them side by side.
Other load on the machine inflates wall-clock figures; CPU time (all threads of the process)
is far less sensitive to it, so compare settings by both, measured together (`--rounds`).

    .venv/bin/python benchmarks/extractor_bench.py --backbone efficientnetb0
    .venv/bin/python benchmarks/extractor_bench.py --backbone efficientnetb7 --runs 5 --batch 4
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from retrieval.tf_runtime import configure_tensorflow

PHOTO_SHAPE = (480, 640, 3)  # a typical phone photo as Telegram sends it: resizing is timed too


def memory_mb() -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak so far (VmHWM), in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB → MiB
    return fields


def onednn_active() -> str:
    """What TensorFlow itself says about oneDNN (a private API: 'unknown' if it moved)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return "yes" if _pywrap_util_port.IsMklEnabled() else "no"
    except (ImportError, AttributeError):
        return "unknown"


def measure(args: argparse.Namespace, onednn: bool) -> dict[str, float | str]:
    """All figures for one oneDNN setting, in this process."""
    configure_tensorflow(threads=args.threads, onednn=onednn)
    from retrieval.extractor import Extractor

    started = time.perf_counter()
    extractor = Extractor(args.backbone, args.weights, args.input_size)
    build = time.perf_counter() - started
    warmup = extractor.warmup()
    after_first = memory_mb()

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, PHOTO_SHAPE, dtype=np.uint8)
    single, single_cpu = [], []
    for _ in range(args.runs):
        started, cpu = time.perf_counter(), time.process_time()
        extractor.embed_one(photo)
        single.append(time.perf_counter() - started)
        single_cpu.append(time.process_time() - cpu)

    photos = [rng.integers(0, 256, PHOTO_SHAPE, dtype=np.uint8) for _ in range(args.batch)]
    extractor.embed(photos, batch_size=args.batch)  # first call at this batch shape: untimed
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.batch_runs):
        extractor.embed(photos, batch_size=args.batch)
    batch_seconds = time.perf_counter() - started
    batch_cpu = time.process_time() - cpu
    images = args.batch * args.batch_runs
    at_end = memory_mb()
    return {
        "onednn": "on" if onednn else "off",
        "onednn_active": onednn_active(),
        "model": extractor.model_name,
        "input_size": extractor.input_size,
        "dim": extractor.fingerprint.dim,
        "params": extractor.param_count,
        "build_s": build,
        "warmup_s": warmup,
        "single_median_ms": statistics.median(single) * 1000,
        "single_p90_ms": float(np.percentile(single, 90)) * 1000,
        "single_cpu_ms": statistics.median(single_cpu) * 1000,
        "batch_img_per_s": images / batch_seconds,
        "batch_cpu_ms": batch_cpu / images * 1000,
        "rss_first_mb": after_first["VmRSS"],
        "hwm_first_mb": after_first["VmHWM"],
        "hwm_end_mb": at_end["VmHWM"],
        "load_1min": os.getloadavg()[0],
    }


def run_child(args: argparse.Namespace, setting: str) -> dict[str, float | str]:
    """Measure one oneDNN setting in a fresh interpreter (TensorFlow not yet imported)."""
    command = [sys.executable, __file__, *child_argv(args), "--onednn", setting, "--json"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the oneDNN={setting} run failed (exit {done.returncode}); see its output above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--backbone", args.backbone, "--weights", args.weights, "--runs", str(args.runs)]
    argv += ["--batch", str(args.batch), "--batch-runs", str(args.batch_runs)]
    argv += ["--threads", str(args.threads)]
    if args.input_size:
        argv += ["--input-size", str(args.input_size)]
    return argv


ROWS = (  # label, key, format
    ("oneDNN active (TensorFlow says)", "onednn_active", "{}"),
    ("model build, s", "build_s", "{:.1f}"),
    ("first call (warm-up), s", "warmup_s", "{:.2f}"),
    ("single image median, ms", "single_median_ms", "{:.0f}"),
    ("single image p90, ms", "single_p90_ms", "{:.0f}"),
    ("single image CPU time, ms", "single_cpu_ms", "{:.0f}"),
    ("batch throughput, images/s", "batch_img_per_s", "{:.2f}"),
    ("batch CPU time per image, ms", "batch_cpu_ms", "{:.0f}"),
    ("RSS after first call, MiB", "rss_first_mb", "{:.0f}"),
    ("peak RSS after first call, MiB", "hwm_first_mb", "{:.0f}"),
    ("peak RSS at end, MiB", "hwm_end_mb", "{:.0f}"),
    ("machine load (1 min) at end", "load_1min", "{:.1f}"),
)


ROUND_PICK = {  # how repeated rounds combine: other load only ever slows a run down
    "build_s": min,
    "warmup_s": min,
    "single_median_ms": min,
    "single_p90_ms": min,
    "single_cpu_ms": min,
    "batch_img_per_s": max,
    "batch_cpu_ms": min,
    "rss_first_mb": max,
    "hwm_first_mb": max,
    "hwm_end_mb": max,
    "load_1min": statistics.mean,
}


def combine(rounds: list[dict[str, float | str]]) -> dict[str, float | str]:
    """One result from repeated rounds: the fastest times, the largest memory, the mean load."""
    merged = dict(rounds[0])
    for key, pick in ROUND_PICK.items():
        merged[key] = pick(float(r[key]) for r in rounds)
    return merged


def print_table(results: list[dict[str, float | str]], args: argparse.Namespace) -> None:
    first = results[0]
    print(
        f"\n{first['model']} at {first['input_size']} px, weights {args.weights}, "
        f"dim {first['dim']}, {first['params']:,} params; {args.runs} single runs after warm-up "
        f"on a {PHOTO_SHAPE[1]}x{PHOTO_SHAPE[0]} photo, batch {args.batch} x {args.batch_runs}; "
        f"{os.cpu_count()} CPUs"
        + (f"; best of {args.rounds} alternating rounds" if args.rounds > 1 else "")
    )
    header = f"{'':<32}" + "".join(f"{'oneDNN ' + str(r['onednn']):>14}" for r in results)
    if len(results) == 2:
        header += f"{'on/off':>10}"
    print(header)
    for label, key, fmt in ROWS:
        line = f"{label:<32}" + "".join(f"{fmt.format(r[key]):>14}" for r in results)
        values = [r[key] for r in results]
        if len(results) == 2 and all(isinstance(v, float) for v in values) and values[1]:
            on, off = (values[0], values[1]) if results[0]["onednn"] == "on" else values[::-1]
            line += f"{on / off:>9.2f}x"
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnetb7", help="registry name")
    parser.add_argument("--weights", default="none", help="imagenet | none | weights file")
    parser.add_argument("--input-size", type=int, default=None, help="default: the backbone's")
    parser.add_argument("--runs", type=int, default=10, help="timed single-image calls")
    parser.add_argument("--batch", type=int, default=8, help="images per batch call")
    parser.add_argument("--batch-runs", type=int, default=2, help="timed batch calls")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads; 0 = all")
    parser.add_argument("--onednn", choices=("on", "off", "both"), default="both")
    parser.add_argument(
        "--rounds", type=int, default=1, help="with both: alternate off/on this many times"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line (internal)")
    args = parser.parse_args(argv)
    if min(args.runs, args.batch, args.batch_runs, args.rounds) < 1:
        parser.error("--runs, --batch, --batch-runs and --rounds must be at least 1")

    if args.onednn == "both":
        rounds = [[run_child(args, "off"), run_child(args, "on")] for _ in range(args.rounds)]
        results = [combine([pair[i] for pair in rounds]) for i in (0, 1)]
    else:
        results = [measure(args, args.onednn == "on")]
        if args.json:
            print(json.dumps(results[0]))
            return
    print_table(results, args)


if __name__ == "__main__":
    main()
