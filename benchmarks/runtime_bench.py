"""Keras vs exported runtimes (LiteRT, ONNX Runtime): latency, memory, start-up, agreement.

Every figure comes from a fresh subprocess per runtime, so resident memory is that runtime's
alone. Rounds alternate the runtimes (keras, litert, onnx, keras, ...), and the table keeps
each row's median over rounds, so load that drifts during the run hits every row alike.
Ratios are to Keras in the same run. CPU time (all threads) is printed beside wall time
because other load on these 2 shared cores inflates wall time far more than CPU time.

Exports run in their own subprocess too, with a memory watchdog (`--export-limit-gb`) that
stops the export by PID rather than let it take the machine.

    .venv/bin/python benchmarks/runtime_bench.py --backbone efficientnet-lite0 \\
        --index data/index --photos ../shared/data/wild/photos
    .venv/bin/python benchmarks/runtime_bench.py --backbone efficientnetb7 --weights none \\
        --runs 8 --rounds 1 --threads 2
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from extractor_bench import PHOTO_SHAPE, memory_mb

ONNX_FILE = "model.onnx"
VECTORS = "vectors-{name}.npy"


# --- workers: each runs in its own process and prints one JSON line -------------------------


def export_litert(args: argparse.Namespace) -> dict[str, object]:
    from retrieval.extractor import Extractor
    from retrieval.runtime_export import export_runtime
    from retrieval.tf_runtime import configure_tensorflow

    configure_tensorflow()
    extractor = Extractor(args.backbone, args.weights, args.input_size)
    record, home = export_runtime(extractor, args.work / "runtime")
    return {"file": str(home), "mib": record.size_bytes / 2**20, "cosine": record.probe_cosine}


def export_onnx(args: argparse.Namespace) -> dict[str, object]:
    """tf2onnx from a frozen graph: freezing turns every variable (B7's Normalization mean and
    variance included) into a constant, so the ONNX graph has the image as its only input."""
    from retrieval.extractor import Extractor
    from retrieval.tf_runtime import configure_tensorflow

    configure_tensorflow()
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    extractor = Extractor(args.backbone, args.weights, args.input_size)
    frozen = convert_variables_to_constants_v2(extractor._forward.get_concrete_function())
    graph = frozen.graph.as_graph_def()
    inputs = [t.name for t in frozen.inputs]
    outputs = [t.name for t in frozen.outputs]
    del extractor, frozen
    path = args.work / ONNX_FILE
    with tf.device("/cpu:0"):
        model, _ = tf2onnx.convert.from_graph_def(
            graph, input_names=inputs, output_names=outputs, opset=17, output_path=str(path)
        )
    extra = [i.name for i in model.graph.input][1:]
    if extra:
        raise SystemExit(f"ONNX graph has inputs besides the image: {extra}")
    return {"file": str(path), "mib": path.stat().st_size / 2**20}


def make_forward(args: argparse.Namespace):
    """(prepare, forward) of one runtime, plus what it is; the extractor's own resize."""
    if args.runtime == "keras":
        from retrieval.extractor import Extractor
        from retrieval.tf_runtime import configure_tensorflow

        configure_tensorflow(threads=args.threads)
        extractor = Extractor(args.backbone, args.weights, args.input_size)
        return extractor.prepare, extractor.embed_prepared
    from retrieval.runtime_extractor import load_runtime_extractor
    from retrieval.settings import Settings

    settings = Settings(
        backbone=args.backbone,
        weights=args.weights,
        input_size=args.input_size,
        runtime_dir=args.work / "runtime",
        threads=args.threads,
    )
    extractor = load_runtime_extractor(settings)
    if args.runtime == "litert":
        return extractor.prepare, extractor.embed_prepared
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(args.work / ONNX_FILE), options, ["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return extractor.prepare, lambda batch: session.run(None, {name: batch})[0]


def time_calls(call, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `runs` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return statistics.median(wall), statistics.median(cpu)


def extractor_figures(args: argparse.Namespace) -> dict[str, object]:
    from retrieval.runtime_export import probe_images

    started = time.perf_counter()
    prepare, forward = make_forward(args)
    load = time.perf_counter() - started
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, PHOTO_SHAPE, dtype=np.uint8)
    one = prepare([photo])  # (1, S, S, 3)
    started = time.perf_counter()
    forward(one)
    first = time.perf_counter() - started
    forward_s, forward_cpu = time_calls(lambda: forward(one), args.runs)
    embed_s, _ = time_calls(lambda: forward(prepare([photo])), max(3, args.runs // 3))
    batch = np.repeat(one, args.batch, axis=0)
    forward(batch)  # first call at this shape: untimed
    batch_s, batch_cpu = time_calls(lambda: forward(batch), max(2, args.runs // args.batch))
    np.save(args.work / VECTORS.format(name=args.label), forward(prepare(probe_images())))
    return {
        "load_s": load,
        "first_s": first,
        "forward_ms": forward_s * 1e3,
        "forward_cpu_ms": forward_cpu * 1e3,
        "embed_one_ms": embed_s * 1e3,
        "batch_ms_per_image": batch_s * 1e3 / args.batch,
        "batch_cpu_ms_per_image": batch_cpu * 1e3 / args.batch,
        "peak_mib": memory_mb()["VmHWM"],
        "tensorflow": "tensorflow" in sys.modules,
    }


def serving_figures(args: argparse.Namespace) -> dict[str, object]:
    """The product's own load path: service ready, then `--queries` real photo queries."""
    from retrieval.loading import load_service
    from retrieval.settings import Settings

    settings = Settings(
        backbone=args.backbone,
        weights=args.weights,
        input_size=args.input_size,
        index_dir=args.index,
        runtime_dir=args.work / "runtime" if args.runtime == "litert" else args.work / "none",
        threads=args.threads,
    )
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    service = load_service(settings)
    ready = memory_mb()["VmRSS"]
    latencies, cpu = [], []
    for query in range(args.queries):
        data = photos[query % len(photos)].read_bytes()
        started, cpu_started = time.perf_counter(), time.process_time()
        service.search_bytes(data, 5)
        latencies.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    memory = memory_mb()
    return {
        "ready_rss_mib": ready,
        "rss_mib": memory["VmRSS"],
        "peak_mib": memory["VmHWM"],
        "query_p50_ms": statistics.median(latencies) * 1e3,
        "query_cpu_ms": statistics.median(cpu) * 1e3,
        "tensorflow": "tensorflow" in sys.modules,
    }


WORKERS = {
    "export-litert": export_litert,
    "export-onnx": export_onnx,
    "extractor": extractor_figures,
    "serve": serving_figures,
}


# --- the conductor --------------------------------------------------------------------------


def run_worker(args: argparse.Namespace, worker: str, runtime: str, label: str, threads: int):
    """Run one worker subprocess; stop it by PID if its memory passes the export limit."""
    command = [sys.executable, __file__, *sys.argv[1:], "--worker", worker]
    command += ["--runtime", runtime, "--label", label, "--threads", str(threads)]
    command += ["--work", str(args.work)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, killed = [0.0], threading.Event()

    def watch() -> None:
        limit_kib = args.export_limit_gb * 2**20
        while process.poll() is None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except FileNotFoundError:
                return
            rss_lines = [line for line in status.splitlines() if line.startswith("VmRSS")]
            if not rss_lines:  # exited, not yet reaped
                return
            rss = int(rss_lines[0].split()[1])
            peak[0] = max(peak[0], rss / 1024)
            if rss > limit_kib:
                killed.set()
                process.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    if killed.is_set():
        return {"error": f"stopped: memory passed {args.export_limit_gb} GB", "peak_mib": peak[0]}
    if process.returncode != 0:
        return {"error": (err.strip().splitlines() or ["?"])[-1][:160], "peak_mib": peak[0]}
    result = json.loads(out.strip().splitlines()[-1])
    result.setdefault("peak_mib", peak[0])
    return result


def cold_search(args: argparse.Namespace, runtime_dir: Path, photo: Path) -> tuple[float, float]:
    """Seconds from spawning `snapfind search` to its first answer line; its whole CPU time."""
    env = os.environ | {
        "SNAPFIND_BACKBONE": args.backbone,
        "SNAPFIND_WEIGHTS": args.weights,
        "SNAPFIND_INDEX_DIR": str(args.index),
        "SNAPFIND_RUNTIME_DIR": str(runtime_dir),
    }
    if args.input_size:
        env["SNAPFIND_INPUT_SIZE"] = str(args.input_size)
    snapfind = Path(sys.executable).with_name("snapfind")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(snapfind), "search", "-k", "5", str(photo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    process.stdout.readline()  # "photo:" then the ranked lines, printed at once
    seconds = time.perf_counter() - started
    process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime


def cosine_to_keras(work: Path, label: str) -> float:
    keras = np.load(work / VECTORS.format(name="keras"))
    other = np.load(work / VECTORS.format(name=label))
    return float(np.min(np.sum(keras * other, axis=1)))


def conduct(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(f"# {args.backbone} ({args.weights}), load {load[0]:.1f} {load[1]:.1f} at start")
    if args.serving_only:
        run_worker(args, "export-litert", "keras", "export", 0)
        serving_table(args)
        return
    runtimes = [("keras", "keras", 0)]
    runtimes += [(f"litert t{t}", "litert", t) for t in args.litert_threads]
    exports = {"litert": run_worker(args, "export-litert", "keras", "export", 0)}
    if not args.skip_onnx:
        exports["onnx"] = run_worker(args, "export-onnx", "keras", "export", 0)
        runtimes += [(f"onnx t{t}", "onnx", t) for t in args.onnx_threads]
    print("\n| export | result | peak MiB |\n|---|---|---|")
    for name, result in exports.items():
        what = result.get("error") or f"{result['mib']:.1f} MiB file"
        print(f"| {name} | {what} | {result['peak_mib']:.0f} |")
    runtimes = [r for r in runtimes if r[1] == "keras" or "error" not in exports[r[1]]]

    rounds: dict[str, list[dict[str, object]]] = {label: [] for label, _, _ in runtimes}
    for _ in range(args.rounds):
        for label, runtime, threads in runtimes:
            slug = label.replace(" ", "-")
            rounds[label].append(run_worker(args, "extractor", runtime, slug, threads))
    print(
        "\n| runtime | forward ms (median) | CPU ms | × Keras | embed_one ms | batch "
        f"{args.batch} ms/img | CPU ms/img | load s | first s | peak MiB | cosine | TF |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    keras_ms = statistics.median(r["forward_ms"] for r in rounds["keras"])
    for label, runs in rounds.items():
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            print(f"| {label} | failed: {errors[0]} |")
            continue

        def med(key: str, runs: list[dict[str, object]] = runs) -> float:
            return statistics.median(float(r[key]) for r in runs)

        cosine = cosine_to_keras(args.work, label.replace(" ", "-"))
        print(
            f"| {label} | {med('forward_ms'):.1f} | {med('forward_cpu_ms'):.1f} "
            f"| {med('forward_ms') / keras_ms:.2f} | {med('embed_one_ms'):.1f} "
            f"| {med('batch_ms_per_image'):.1f} | {med('batch_cpu_ms_per_image'):.1f} "
            f"| {med('load_s'):.2f} | {med('first_s'):.2f} | {med('peak_mib'):.0f} "
            f"| {cosine:.6f} | {'yes' if runs[0]['tensorflow'] else 'no'} |"
        )

    if args.index is not None:
        serving_table(args)


def serving_table(args: argparse.Namespace) -> None:
    """Cold `snapfind search`, then memory and latency over `--queries` in one process."""
    photo = sorted(args.photos.iterdir())[0]
    print(
        "\n| serving | cold `snapfind search` s | its CPU s | RSS ready MiB | RSS after "
        f"{args.queries} queries MiB | peak MiB | query p50 ms | CPU ms | TF |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, runtime, runtime_dir in (
        ("keras", "keras", args.work / "none"),
        ("litert", "litert", args.work / "runtime"),
    ):
        cold, cold_cpu = cold_search(args, runtime_dir, photo)
        served = run_worker(args, "serve", runtime, label, args.serve_threads)
        if "error" in served:
            print(f"| {label} | {cold:.1f} | failed: {served['error']} |")
            continue
        print(
            f"| {label} | {cold:.1f} | {cold_cpu:.1f} | {served['ready_rss_mib']:.0f} "
            f"| {served['rss_mib']:.0f} "
            f"| {served['peak_mib']:.0f} | {served['query_p50_ms']:.1f} "
            f"| {served['query_cpu_ms']:.1f} "
            f"| {'yes' if served['tensorflow'] else 'no'} |"
        )
    load = os.getloadavg()
    print(f"\nload {load[0]:.1f} {load[1]:.1f} at end")


def threads_list(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--runs", type=int, default=30, help="single-image calls per worker")
    parser.add_argument("--batch", type=int, default=8, help="batch size for throughput")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of workers")
    parser.add_argument("--litert-threads", type=threads_list, default=[1, 2])
    parser.add_argument("--onnx-threads", type=threads_list, default=[1, 2])
    parser.add_argument("--skip-onnx", action="store_true", help="no tf2onnx export (memory)")
    parser.add_argument("--export-limit-gb", type=float, default=12.0)
    parser.add_argument("--index", type=Path, help="an index of this backbone, for serving")
    parser.add_argument("--photos", type=Path, help="folder of query photos, for serving")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--serve-threads", type=int, default=0)
    parser.add_argument("--serving-only", action="store_true", help="export, then serving only")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="keras", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    with tempfile.TemporaryDirectory(prefix="runtime-bench-") as work:
        args.work = Path(work)
        conduct(args)


if __name__ == "__main__":
    main()
