"""ONNX Runtime session options against resident memory and speed, on one exported model.

Each variant opens the model in its own fresh process, runs `--runs` single-image forwards at
the model's side (and, with `--map-side`, the same number at the region pass's side through the
model's map output), and reports: RSS after opening, after the first forward, after all of
them, the peak (VmHWM), and the median wall and CPU time of a forward. Rounds alternate the
variants so that the machine's load falls on all of them alike.

    .venv/bin/python benchmarks/onnx_memory.py --model RUNTIME/KEY/model.onnx --runs 5 --rounds 2

The product's options are `retrieval.onnx_runner.session_options`; the variants change one
thing each. A model with the region pass's map as its second output computes both in every forward
here, as a room photo's query does.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extractor_bench import memory_mb  # noqa: E402
from retrieval.onnx_runner import release_freed_memory  # noqa: E402

# variant → changes to the product's session options ("trim": whether the C heap is trimmed
# after opening, as `OnnxRunner` does)
VARIANTS: dict[str, dict[str, object]] = {
    "product (mem pattern off + heap trimmed)": {},
    "before (mem pattern on + not trimmed)": {"enable_mem_pattern": True, "trim": False},
    "not trimmed": {"trim": False},
    "mem pattern on": {"enable_mem_pattern": True},
    "no prepacking": {"session.disable_prepacking": "1"},
    "initializers outside arena": {"session.use_device_allocator_for_initializers": "1"},
    "arena off": {"enable_cpu_mem_arena": False},
    "optimisation EXTENDED (no NCHWc)": {"graph_optimization_level": "ORT_ENABLE_EXTENDED"},
    "optimisation BASIC": {"graph_optimization_level": "ORT_ENABLE_BASIC"},
    # the layout before: the query's vector from --model, the map from its own LiteRT file
    "product + separate LiteRT map model": {"separate_map": True},
}


def open_session(model: Path, threads: int, changes: dict[str, object]):
    import onnxruntime as ort

    from retrieval.onnx_runner import session_options

    options = session_options(threads)
    for key, value in changes.items():
        if key in ("trim", "separate_map"):
            continue
        if key.startswith("session."):
            options.add_session_config_entry(key, str(value))
        elif key == "graph_optimization_level":
            options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, str(value))
        else:
            setattr(options, key, value)
    return ort.InferenceSession(str(model), options, ["CPUExecutionProvider"])


def worker(args: argparse.Namespace) -> dict[str, object]:
    """One variant in this process: the figures as a dict (printed as JSON)."""
    started = time.perf_counter()
    changes = VARIANTS[args.variant]
    session = open_session(args.model, args.threads, changes)
    if changes.get("trim", True):
        release_freed_memory()
    opened = time.perf_counter() - started
    rss_open = memory_mb()["VmRSS"]
    side = session.get_inputs()[0].shape[1]
    outputs = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (1, side, side, 3)).astype(np.float32)
    session.run(outputs[:1], {session.get_inputs()[0].name: batch})
    rss_first = memory_mb()["VmRSS"]
    separate = None
    if changes.get("separate_map"):
        from retrieval.runtime_extractor import LiteRTRunner

        separate = LiteRTRunner(args.separate_map, args.threads)
        map_side = separate._interpreter.get_input_details()[0]["shape"][1]
        map_batch = rng.uniform(-1, 1, (1, map_side, map_side, 3)).astype(np.float32)
        outputs = outputs[:1]  # the map comes from the other file
    wall, cpu = [], []
    for _ in range(args.runs):  # a room photo: its vector and its map
        t0, c0 = time.perf_counter(), time.process_time()
        session.run(outputs, {session.get_inputs()[0].name: batch})
        if separate is not None:
            separate.run(map_batch)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    memory = memory_mb()
    return {
        "open_s": opened,
        "rss_open": rss_open,
        "rss_first": rss_first,
        "rss_after": memory["VmRSS"],
        "peak": memory["VmHWM"],
        "wall_ms": [1000 * w for w in wall],
        "cpu_ms": [1000 * c for c in cpu],
        "outputs": len(outputs),
    }


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--separate-map",
        type=Path,
        help="a regions.tflite of the same network: the variant 'product + separate LiteRT map "
        "model' (the layout before)",
    )
    parser.add_argument("--variants", default=",".join(list(VARIANTS)[:-1]))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # the worker's own
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(worker(args)))
        return
    chosen = [v for v in args.variants.split(",") if v]
    results: dict[str, list[dict[str, object]]] = {v: [] for v in chosen}
    print(
        f"# ONNX Runtime options: {args.model} ({args.model.stat().st_size / 2**20:.0f} MiB), "
        f"{args.threads} threads, {args.runs} forwards × {args.rounds} rounds, load {load()}"
    )
    for _ in range(args.rounds):
        for variant in chosen:
            command = [
                sys.executable,
                __file__,
                "--model",
                str(args.model),
                "--threads",
                str(args.threads),
                "--runs",
                str(args.runs),
                "--variant",
                variant,
            ]
            command += ["--separate-map", str(args.separate_map)] if args.separate_map else []
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print()
    print(
        "| variant | open s | RSS open MiB | RSS 1st MiB | RSS after MiB | peak MiB | "
        "forward ms | CPU ms | × product CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    base = None
    for variant in chosen:
        runs = results[variant]
        wall = statistics.median(w for r in runs for w in r["wall_ms"])
        cpu = statistics.median(c for r in runs for c in r["cpu_ms"])
        base = base or cpu

        def most(key: str, runs=runs) -> float:
            return max(float(r[key]) for r in runs)

        print(
            f"| {variant} | {statistics.median(r['open_s'] for r in runs):.2f} | "
            f"{most('rss_open'):.0f} | {most('rss_first'):.0f} | {most('rss_after'):.0f} | "
            f"{most('peak'):.0f} | {wall:.1f} | {cpu:.1f} | {cpu / base:.2f} |"
        )
    print(f"\nload {load()} at end")


if __name__ == "__main__":
    main()
