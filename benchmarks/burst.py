"""A burst of shoppers against 1, 2 and 3 bot replicas: webhook, Redis, loopback Bot API.

`--users` users each send `--per-user` photos at the same moment. The replicas are real
`snapfind bot` processes in webhook mode sharing one private `redis-server`; the loopback Bot
API server of the tests posts every update to a dispatcher that hands them to the replicas
in turn (as Caddy does). Three processes are started once; the 1- and 2-replica runs simply
dispatch to the first one or two (an idle replica costs no CPU). Reported per run: albums
delivered (and any user who got a wrong count), p50/p95 photo → album, photos per second in
all and per replica; then the bare forward time of the same photos measured in this process,
and what that means on a machine with a core per replica.

    .venv/bin/python benchmarks/burst.py                       # 50 users × 2, lite0
    .venv/bin/python benchmarks/burst.py --users 10 --replicas 1 2
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback server lives with the tests

from benchmarks.bot_e2e import IKEA, forward_time, ikea_data, shapes_data  # noqa: E402
from index.build import BuildOptions, build_index  # noqa: E402
from retrieval.extractor import Extractor  # noqa: E402
from retrieval.tf_runtime import configure_tensorflow  # noqa: E402
from tests.redis_server import RedisServer, free_port  # noqa: E402
from tests.telegram_api import TOKEN, BotApiServer  # noqa: E402
from tests.telegram_api.dispatcher import Dispatcher  # noqa: E402

SNAPFIND = ROOT / ".venv" / "bin" / "snapfind"
_DRAINS: set[asyncio.Task[None]] = set()


async def start_replica(
    env: dict[str, str], port: int, cwd: Path, timeout: float = 600
) -> asyncio.subprocess.Process:
    """One `snapfind bot` in webhook mode; returns once it logs that it serves."""
    replica_env = {
        **env,
        "SNAPFIND_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
        "SNAPFIND_WEBHOOK_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        str(SNAPFIND), "bot", env=replica_env, cwd=cwd, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await process.stderr.readline()).decode(errors="replace")
            if not line:
                raise RuntimeError(f"replica on port {port} exited: {process.returncode}")
            if "serving" in line:
                break
    drain = asyncio.create_task(_drain(process.stderr))  # keep its log pipe from filling up
    _DRAINS.add(drain)
    drain.add_done_callback(_DRAINS.discard)
    return process


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def burst(
    server: BotApiServer, photos: list[bytes], users: int, per_user: int, first_user: int
) -> tuple[list[float], int, float, list[int]]:
    """Every user sends `per_user` photos at once; latencies, albums, seconds, wrong users."""
    ids = [first_user + u for u in range(users)]
    sent: dict[int, list[float]] = {u: [] for u in ids}
    mark = len(server.calls)
    started = time.monotonic()
    for round_ in range(per_user):
        for number, user in enumerate(ids):
            photo = photos[(round_ * users + number) % len(photos)]
            sent[user].append(time.monotonic())
            await server.send_photo(user, photo)
    expected = users * per_user

    def albums() -> list:
        return [
            c for c in server.calls[mark:] if c.method == "sendMediaGroup" and c.chat_id in sent
        ]

    await server.wait_for(lambda _: len(albums()) >= expected, start=mark, timeout=1800)
    seconds = time.monotonic() - started
    got = albums()
    latencies, wrong = [], []
    for user in ids:
        arrived = sorted(c.at for c in got if c.chat_id == user)
        if len(arrived) != per_user:
            wrong.append(user)
        latencies += [a - s for a, s in zip(arrived, sent[user], strict=False)]
    return latencies, len(got), seconds, wrong


async def run(args: argparse.Namespace) -> None:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    configure_tensorflow()
    extractor = Extractor(args.backbone, args.weights, args.input_size)
    extractor.warmup()
    photos_needed = args.users * args.per_user
    with tempfile.TemporaryDirectory(prefix="snapfind-burst-") as tmp:
        work = Path(tmp)
        use_ikea = IKEA.is_file() and not args.shapes
        catalog, photos = (
            ikea_data(work, args.catalog_size, photos_needed)
            if use_ikea
            else shapes_data(work, photos_needed)
        )
        report = build_index(catalog, work / "index", extractor, BuildOptions(progress=False))
        forward = [forward_time(extractor, p) for p in photos[: args.forward_samples]]
        redis = RedisServer(work)
        redis.start()
        processes: list[asyncio.subprocess.Process] = []
        rows = []
        try:
            async with BotApiServer(lifetime=3600) as server:
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "HOME": os.environ.get("HOME", str(work)),
                    "TF_CPP_MIN_LOG_LEVEL": "2",
                    "SNAPFIND_BOT_TOKEN": TOKEN,
                    "SNAPFIND_BOT_API_URL": server.base_url,
                    "SNAPFIND_BOT_FILE_URL": server.base_file_url,
                    "SNAPFIND_BOT_MODE": "webhook",
                    "SNAPFIND_BACKBONE": args.backbone,
                    "SNAPFIND_WEIGHTS": args.weights,
                    "SNAPFIND_INDEX_DIR": str(work / "index"),
                    "SNAPFIND_REDIS_URL": redis.url,
                    "SNAPFIND_RATE_LIMIT": "100000",
                    "SNAPFIND_QUEUE_SIZE": "1024",
                    "SNAPFIND_WATCH_INTERVAL": "0",
                    "SNAPFIND_REQUEST_TIMEOUT": "600",
                }
                if args.input_size:
                    env["SNAPFIND_INPUT_SIZE"] = str(args.input_size)
                ports = [free_port() for _ in range(max(args.replicas))]
                started = time.monotonic()
                for port in ports:  # one after another: three TensorFlow imports at once
                    processes.append(await start_replica(env, port, work))
                print(f"{len(ports)} replicas serving after {time.monotonic() - started:.0f} s")
                targets = [f"http://127.0.0.1:{port}/hook" for port in ports]
                for count in args.replicas:
                    async with Dispatcher(targets[:count]) as dispatcher:
                        server.webhook_url = dispatcher.url
                        # each replica's first photo (warm-up), not measured
                        await burst(server, photos, count, 1, 90_000 + count * 1000)
                        latencies, albums, seconds, wrong = await burst(
                            server, photos, args.users, args.per_user, 10_000 * count
                        )
                    rows.append((count, latencies, albums, seconds, wrong))
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
            for process in processes:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 60)
            redis.stop()

    source = f"IKEA ({report.products} products)" if use_ikea else "drawn shapes"
    print(
        f"{extractor.model_name} at {extractor.input_size} px, weights {args.weights}; "
        f"catalog: {source}; {args.users} users × {args.per_user} photos at once; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "| replicas | albums | wrong users | p50 photo→album | p95 | burst s | photos/s "
        "| per replica |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for count, latencies, albums, seconds, wrong in rows:
        rate = albums / seconds
        print(
            f"| {count} | {albums}/{args.users * args.per_user} | {len(wrong)} | "
            f"{np.percentile(latencies, 50):.1f} s | {np.percentile(latencies, 95):.1f} s | "
            f"{seconds:.1f} | {rate:.2f} | {rate / count:.2f} |"
        )
    f50 = float(np.median(forward))
    burst_size = args.users * args.per_user
    print(f"bare forward (this process, between runs): median {f50 * 1000:.0f} ms")
    for count, _, albums, seconds, _ in rows:
        per_photo = seconds / albums * count  # seconds one replica spent per photo
        print(
            f"{count} replica(s): {per_photo * 1000:.0f} ms of wall time per photo per replica = "
            f"{per_photo / f50:.1f}× the bare forward (the rest: queue wait under shared CPU, "
            f"download, decode, search, upload)"
        )
    for cores in (1, 2, 4, 8):
        print(
            f"with {cores} core(s), one replica each, at this forward time: the last of "
            f"{burst_size} photos waits ≈ {burst_size * f50 / cores:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--weights", default="imagenet", help="Lite weights ship with snapfind")
    parser.add_argument("--input-size", type=int, help="default: the backbone's")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=2)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--catalog-size", type=int, default=200, help="IKEA products indexed")
    parser.add_argument("--shapes", action="store_true", help="drawn shapes even if IKEA exists")
    parser.add_argument("--forward-samples", type=int, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
