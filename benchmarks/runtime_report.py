"""One run, the whole table of docs/performance.md: Keras against the exported runtimes.

In this order, each figure from fresh processes:
1. exports: every (backbone, format) exported once into `--work` and reused by later runs
   (`--fresh` exports again; the export's time and peak memory are printed when it runs);
2. extractor: per backbone, Keras, LiteRT and ONNX Runtime at 1 and 2 threads, each in its own
   process — load, first call, single-image forward (median wall and CPU), peak memory, worst
   cosine to Keras on the probe images; rounds alternate the runtimes, ratios are to Keras;
3. serving, Keras against the chosen runtime (retrieval/runtime_choice.py): a cold `snapfind
   search` to its answer, a cold `snapfind bot` to its first album over the loopback Bot API of
   the tests (the photo waits before the bot starts), the bot's RSS after that first reply and
   after `--queries` more photos (every `--rooms-every`th a room photo, whose objects are
   searched too), their p50 photo → album, products and rooms apart;
4. `benchmarks/bot_e2e.py` with the chosen runtime: photo → album p50 against the bare forward,
   paired photo by photo in one process.

    .venv/bin/python benchmarks/runtime_report.py            # both backbones, ~10 min quiet
    .venv/bin/python benchmarks/runtime_report.py --quick    # fewer runs and queries
    .venv/bin/python benchmarks/runtime_report.py --backbones efficientnetb7 --formats onnx

The load average is printed at the start and end of every section: wall-clock figures mean
little at a high load, CPU time survives it.
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback Bot API server lives with the tests

from benchmarks.bot_e2e import IKEA, ikea_data, photo_to_album, telegram_jpeg  # noqa: E402
from benchmarks.extractor_bench import PHOTO_SHAPE, memory_mb  # noqa: E402
from tests.telegram_api import TOKEN, BotApiServer  # noqa: E402

SNAPFIND = Path(sys.executable).with_name("snapfind")
WILD = ROOT.parent / "shared" / "data" / "wild" / "photos"
ROOMS = ROOT.parent / "shared" / "data" / "ikea-rooms" / "rooms"


@dataclass(frozen=True)
class Plan:
    """One backbone's share of the report."""

    backbone: str
    weights: str
    runs: int  # single-image forwards per extractor process
    rounds: int  # alternating rounds of extractor processes
    variants: tuple[str, ...]  # "keras", "litert t1", "onnx t2", ...
    catalog_size: int  # IKEA products in the serving index
    queries: int  # bot queries after the first reply (chosen runtime)
    keras_queries: int  # the same for the Keras bot
    e2e_photos: int  # bot_e2e paired photos


def plans(quick: bool) -> dict[str, Plan]:
    every = ("keras", "litert t1", "litert t2", "onnx t1", "onnx t2")
    return {
        "efficientnet-lite0": Plan(
            "efficientnet-lite0", "imagenet", 10 if quick else 30, 1 if quick else 3, every,
            120, 30 if quick else 100, 10 if quick else 30, 12 if quick else 24,
        ),
        "efficientnetb7": Plan(
            "efficientnetb7", "none", 3 if quick else 6, 1, every,
            16 if quick else 24, 10 if quick else 100, 3 if quick else 5, 4 if quick else 12,
        ),
    }  # fmt: skip


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} {five:.1f}"


# --- child processes ------------------------------------------------------------------------


def run_child(command: list[str], env: dict[str, str], limit_gb: float = 0) -> dict[str, object]:
    """Run a child to its end; its stdout, seconds, CPU seconds and polled peak RSS (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=env["PWD"]
    )
    peak, stopped = [0.0], threading.Event()

    def watch() -> None:
        while process.poll() is None:
            rss = rss_mib(process.pid)
            peak[0] = max(peak[0], rss.get("VmRSS", 0.0))
            if limit_gb and peak[0] > limit_gb * 1024:
                stopped.set()
                process.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    error = ""
    if stopped.is_set():
        error = f"stopped: memory passed {limit_gb} GB"
    elif process.returncode != 0:
        error = (err.strip().splitlines() or ["?"])[-1][:200]
    return {
        "out": out,
        "seconds": time.perf_counter() - started,
        "cpu": cpu,
        "peak_mib": peak[0],
        "error": error,
    }


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a live process, in MiB ({} once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return {}
    fields = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def base_env(work: Path, **values: object) -> dict[str, str]:
    """The environment of a child: no .env picked up (it runs in `work`), SNAPFIND_* given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPFIND_")}
    env |= {"PWD": str(work), "PYTHONPATH": str(ROOT)}
    env |= {f"SNAPFIND_{k.upper()}": str(v) for k, v in values.items()}
    return env


# --- 1. exports -----------------------------------------------------------------------------


def runtime_dir(work: Path, backbone: str, fmt: str) -> Path:
    return work / f"runtime-{backbone}-{fmt}"


def exports(args: argparse.Namespace, plan: Plan) -> None:
    print(f"\n### {plan.backbone} ({plan.weights}): exports, {load_text()}\n")
    print("| format | result | seconds | peak MiB |\n|---|---|---|---|")
    for fmt in args.formats.split(","):
        folder = runtime_dir(args.work, plan.backbone, fmt)
        command = [str(SNAPFIND), "export", "--format", fmt, "--runtime-dir", str(folder)]
        command += ["--backbone", plan.backbone, "--weights", plan.weights]
        command += ["--force"] if args.fresh else []
        done = run_child(command, base_env(args.work), args.export_limit_gb)
        what = done["error"] or done["out"].strip().split(": ", 1)[-1].split(", made")[0]
        print(f"| {fmt} | {what} | {done['seconds']:.1f} | {done['peak_mib']:.0f} |")


# --- 2. extractor ---------------------------------------------------------------------------


def extractor_worker(args: argparse.Namespace) -> dict[str, object]:
    """In its own process: one runtime's load, first call, forwards, peak memory, vectors."""
    from retrieval.runtime_export import probe_images

    runtime, _, threads = args.variant.partition(" t")
    started = time.perf_counter()
    if runtime == "keras":
        from retrieval.loading import load_keras_extractor
        from retrieval.settings import Settings

        settings = Settings(_env_file=None, backbone=args.backbone, weights=args.weights)
        extractor = load_keras_extractor(settings)
    else:
        from retrieval.runtime_extractor import RuntimeExtractor, open_runner
        from retrieval.runtime_file import expected_fingerprint, find_runtime, runtime_home

        folder = runtime_dir(args.work, args.backbone, runtime)
        fingerprint = expected_fingerprint(args.backbone, args.weights, None)
        record = find_runtime(folder, fingerprint)
        model = runtime_home(folder, fingerprint) / record.model_file
        extractor = RuntimeExtractor(record, open_runner(runtime, model, int(threads)))
    load = time.perf_counter() - started
    photo = np.random.default_rng(0).integers(0, 256, PHOTO_SHAPE, dtype=np.uint8)
    one = extractor.prepare([photo])  # (1, S, S, 3)
    started = time.perf_counter()
    extractor.embed_prepared(one)
    first = time.perf_counter() - started
    wall, cpu = [], []
    for _ in range(args.runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        extractor.embed_prepared(one)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    vectors = extractor.embed(probe_images(), batch_size=1)
    np.save(args.work / f"vectors-{args.backbone}-{args.variant.replace(' ', '')}.npy", vectors)
    return {
        "load_s": load,
        "first_s": first,
        "forward_ms": statistics.median(wall) * 1e3,
        "cpu_ms": statistics.median(cpu) * 1e3,
        "peak_mib": memory_mb()["VmHWM"],
        "tensorflow": "tensorflow" in sys.modules,
    }


def extractor_table(args: argparse.Namespace, plan: Plan) -> dict[str, float]:
    """Prints the table; returns each variant's median forward ms (for the later sections)."""
    print(f"\n### {plan.backbone}: extractor, one image ({plan.runs} forwards × {plan.rounds} "
          f"rounds per runtime), {load_text()} at start\n")  # fmt: skip
    formats = ("keras", *args.formats.split(","))
    variants = [v for v in plan.variants if v.partition(" ")[0] in formats]
    results: dict[str, list[dict[str, object]]] = {v: [] for v in variants}
    for _ in range(plan.rounds):
        for variant in variants:
            command = [sys.executable, __file__, "--worker", variant, "--backbone", plan.backbone]
            command += ["--weights", plan.weights, "--runs", str(plan.runs)]
            command += ["--work", str(args.work)]
            done = run_child(command, base_env(args.work))
            if done["error"]:
                results[variant].append({"error": done["error"]})
            else:
                results[variant].append(json.loads(done["out"].strip().splitlines()[-1]))
    print("| runtime | forward ms | CPU ms | × Keras wall | × Keras CPU | load s | first s "
          "| peak MiB | cosine to Keras | TF |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    medians: dict[str, float] = {}
    keras_vectors = np.load(args.work / f"vectors-{plan.backbone}-keras.npy")
    for variant, runs in results.items():
        if any("error" in r for r in runs):
            print(f"| {variant} | failed: {next(r['error'] for r in runs if 'error' in r)} |")
            continue

        def med(key: str, runs: list[dict[str, object]] = runs) -> float:
            return statistics.median(float(r[key]) for r in runs)

        medians[variant] = med("forward_ms")
        medians[f"{variant} cpu"] = med("cpu_ms")
        vectors = np.load(args.work / f"vectors-{plan.backbone}-{variant.replace(' ', '')}.npy")
        cosine = float(np.min(np.sum(vectors * keras_vectors, axis=1)))
        print(
            f"| {variant} | {med('forward_ms'):.1f} | {med('cpu_ms'):.1f} "
            f"| {med('forward_ms') / medians['keras']:.2f} "
            f"| {med('cpu_ms') / medians['keras cpu']:.2f} | {med('load_s'):.2f} "
            f"| {med('first_s'):.2f} | {med('peak_mib'):.0f} | {cosine:.6f} "
            f"| {'yes' if runs[0]['tensorflow'] else 'no'} |"
        )
    print(f"\n{load_text()} at end")
    return medians


# --- 3. serving -----------------------------------------------------------------------------


def room_photos(count: int) -> list[bytes]:
    """IKEA room photos as Telegram sends them: the object step runs on these."""
    photos = []
    for path in sorted(ROOMS.glob("*.jpg"))[:count]:
        with Image.open(path) as opened:
            photos.append(telegram_jpeg(opened.convert("RGB")))
    return photos


def serving_index(args: argparse.Namespace, plan: Plan, chosen: Path) -> tuple[Path, list[bytes]]:
    """The first IKEA products, indexed with the chosen runtime once; photos of them as
    Telegram would send them (the queries find their own product: always an album)."""
    work = args.work / f"serve-{plan.backbone}-{plan.catalog_size}"
    work.mkdir(exist_ok=True)
    catalog, _ = ikea_data(work, plan.catalog_size, 0)
    index = work / "index"
    if not (index / "current").exists():
        command = [str(SNAPFIND), "index", "build", "--no-progress", "--catalog", str(catalog)]
        command += ["--out", str(index), "--backbone", plan.backbone, "--weights", plan.weights]
        command += ["--allow-root", str(IKEA.parent)]
        done = run_child(command, base_env(args.work, runtime_dir=chosen))
        if done["error"]:
            raise SystemExit(f"index build failed: {done['error']}")
    rows = catalog.read_text(encoding="utf-8").splitlines()[1:]
    images = [line.rsplit(",", 1)[-1] for line in rows]
    photos = []
    for image in images[: max(plan.queries, plan.keras_queries) + 1]:
        with Image.open(image) as opened:
            photos.append(telegram_jpeg(opened))
    return index, photos


def cold_search(args: argparse.Namespace, index: Path, runtime: Path, photo: Path) -> dict:
    """Seconds from spawning `snapfind search` to its first answer line; its CPU seconds."""
    env = base_env(args.work, index_dir=index, runtime_dir=runtime)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(SNAPFIND), "search", "-k", "5", str(photo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=args.work,
        text=True,
    )
    process.stdout.readline()
    seconds = time.perf_counter() - started
    process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": seconds, "cpu": cpu, "ok": process.returncode == 0}


async def bot_figures(
    args: argparse.Namespace,
    index: Path,
    runtime: Path,
    photos: list[bytes],
    queries: int,
    rooms: list[bytes],
) -> dict[str, float]:
    """A real `snapfind bot` process: cold start to its first album, RSS, `queries` more."""
    async with BotApiServer(lifetime=3600) as server:
        env = base_env(
            args.work,
            bot_token=TOKEN,
            bot_api_url=server.base_url,
            bot_file_url=server.base_file_url,
            bot_mode="polling",
            index_dir=index,
            runtime_dir=runtime,
            rate_limit=100_000,
            watch_interval=0,
            request_timeout=600,
        )
        log = (args.work / f"bot-{runtime.name}.log").open("w")
        started = time.monotonic()
        await server.send_photo(1, photos[0])  # waiting before the bot starts
        process = subprocess.Popen(
            [str(SNAPFIND), "bot"], stdout=log, stderr=log, env=env, cwd=args.work
        )
        try:
            album = await server.reply(1, "sendMediaGroup", timeout=900)
            cold = album.at - started
            await server.wait_for(
                lambda c: (
                    c.method == "sendMessage" and c.chat_id == 1 and "reply_markup" in c.params
                ),
                start=server.calls.index(album),
                timeout=600,
            )
            warm = rss_mib(process.pid)
            cpu_before = process_cpu(process.pid)
            times, room_times = [], []
            for i in range(queries):
                if rooms and args.rooms_every and i % args.rooms_every == args.rooms_every - 1:
                    room = rooms[(i // args.rooms_every) % len(rooms)]
                    room_times.append(await photo_to_album(server, 2, room))
                else:
                    times.append(await photo_to_album(server, 2, photos[1 + i % (len(photos) - 1)]))
            cpu = (process_cpu(process.pid) - cpu_before) / max(queries, 1)
            after = rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 60)
            log.close()
    return {
        "cold_s": cold,
        "warm_rss": warm["VmRSS"],
        "rss": after["VmRSS"],
        "peak": after["VmHWM"],
        "p50_ms": statistics.median(times) * 1e3,
        "rooms": len(room_times),
        "room_p50_ms": statistics.median(room_times) * 1e3 if room_times else float("nan"),
        "cpu_ms": cpu * 1e3,
    }


def buttons_for(chat_id: int):
    """Matches the message with the buttons, which closes a reply (after the album)."""
    return lambda c: (
        c.method == "sendMessage" and c.chat_id == chat_id and "reply_markup" in c.params
    )


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serving_table(args: argparse.Namespace, plan: Plan) -> Path:
    from retrieval.backbones import get_backbone
    from retrieval.runtime_choice import choose_format

    spec = get_backbone(plan.backbone)
    fmt = choose_format(spec, spec.input_size)
    chosen = runtime_dir(args.work, plan.backbone, fmt)
    index, photos = serving_index(args, plan, chosen)
    photo = args.work / f"query-{plan.backbone}.jpg"
    photo.write_bytes(photos[0])
    print(f"\n### {plan.backbone}: serving ({plan.catalog_size} IKEA products; chosen runtime "
          f"{fmt}), {load_text()} at start\n")  # fmt: skip
    print("| serving | cold `search` s | its CPU s | cold `bot` → 1st album s | RSS after 1st "
          "reply MiB | queries (rooms) | RSS after MiB | peak MiB | p50 photo→album ms | room "
          "p50 ms | bot CPU ms/query |\n|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    rooms = room_photos(max(plan.queries, plan.keras_queries))
    rows = {}
    for label, runtime, queries in (
        ("keras", args.work / "no-runtime", plan.keras_queries),
        (fmt, chosen, plan.queries),
    ):
        search = cold_search(args, index, runtime, photo)
        bot = asyncio.run(bot_figures(args, index, runtime, photos, queries, rooms))
        rows[label] = (search, bot)
        print(
            f"| {label} | {search['seconds']:.1f} | {search['cpu']:.1f} | {bot['cold_s']:.1f} "
            f"| {bot['warm_rss']:.0f} | {queries} ({bot['rooms']}) | {bot['rss']:.0f} "
            f"| {bot['peak']:.0f} | {bot['p50_ms']:.1f} | {bot['room_p50_ms']:.1f} "
            f"| {bot['cpu_ms']:.1f} |"
        )
    (keras_search, keras_bot), (search, bot) = rows["keras"], rows[fmt]
    print(
        f"| {fmt} ÷ keras | {search['seconds'] / keras_search['seconds']:.2f} "
        f"| {search['cpu'] / keras_search['cpu']:.2f} | {bot['cold_s'] / keras_bot['cold_s']:.2f} "
        f"| {bot['warm_rss'] / keras_bot['warm_rss']:.2f} | | {bot['rss'] / keras_bot['rss']:.2f} "
        f"| {bot['peak'] / keras_bot['peak']:.2f} | {bot['p50_ms'] / keras_bot['p50_ms']:.2f} "
        f"| {bot['room_p50_ms'] / keras_bot['room_p50_ms']:.2f} "
        f"| {bot['cpu_ms'] / keras_bot['cpu_ms']:.2f} |"
    )
    print(f"\n{load_text()} at end")
    return chosen


# --- 4. bot_e2e -----------------------------------------------------------------------------


def bot_e2e(args: argparse.Namespace, plan: Plan, chosen: Path) -> None:
    print(f"\n### {plan.backbone}: benchmarks/bot_e2e.py with {chosen.name}, {load_text()}\n")
    command = [sys.executable, str(ROOT / "benchmarks" / "bot_e2e.py"), "--backbone"]
    command += [plan.backbone, "--weights", plan.weights, "--runtime-dir", str(chosen)]
    command += ["--users", "1", "--photos", str(plan.e2e_photos)]
    command += ["--catalog-size", str(plan.catalog_size)]
    done = run_child(command, base_env(args.work))
    print("```")
    print(done["error"] or done["out"].rstrip())
    print("```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, rounds and queries")
    parser.add_argument(
        "--backbones", default="efficientnet-lite0,efficientnetb7", help="comma-separated"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/snapfind-runtime-report"))
    parser.add_argument("--fresh", action="store_true", help="export again, even if exported")
    parser.add_argument(
        "--formats", default="litert,onnx", help="runtime formats exported and measured"
    )
    parser.add_argument(
        "--rooms-every", type=int, default=4, help="every Nth bot query is a room photo (0: none)"
    )
    parser.add_argument("--export-limit-gb", type=float, default=14.0)
    parser.add_argument(
        "--sections", default="exports,extractor,serving,e2e", help="comma-separated subset"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backbone", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work = args.work.resolve()
    if args.worker:
        args.variant = args.worker
        print(json.dumps(extractor_worker(args)))
        return
    if not IKEA.is_file():
        raise SystemExit(f"the serving index is built from {IKEA}, which is absent")
    args.work.mkdir(parents=True, exist_ok=True)
    sections = set(args.sections.split(","))
    started = time.perf_counter()
    print(f"# runtime report{' (quick)' if args.quick else ''}: {os.cpu_count()} CPUs, "
          f"{load_text()} at start")  # fmt: skip
    for name in args.backbones.split(","):
        plan = plans(args.quick)[name]
        if "exports" in sections:
            exports(args, plan)
        if "extractor" in sections:
            extractor_table(args, plan)
        chosen = None
        if "serving" in sections:
            chosen = serving_table(args, plan)
        if "e2e" in sections:
            from retrieval.backbones import get_backbone
            from retrieval.runtime_choice import choose_format

            spec = get_backbone(plan.backbone)
            chosen = chosen or runtime_dir(
                args.work, plan.backbone, choose_format(spec, spec.input_size)
            )
            bot_e2e(args, plan, chosen)
    print(f"\nwhole report: {time.perf_counter() - started:.0f} s, {load_text()} at end")


if __name__ == "__main__":
    main()
