"""Photo → album latency of the real bot, beside the bare extractor forward time of the same run.

The real PTB Application runs against the loopback Bot API server of the tests (127.0.0.1):
a photo update is queued, the bot long-polls it, downloads it with getFile, decodes,
extracts, searches, and uploads the album; the clock stops when the server receives the
sendMediaGroup. Query photos are re-encoded the way Telegram serves them (JPEG, 1280 px
long side). The catalog is the first `--catalog-size` IKEA photos of ../shared/data/ikea
when present, else the drawn shapes of the tests. Other load on the machine inflates every
figure; the ratio, measured in one run, is the number to watch (target at 1 user: ≤ 1.15×).

    .venv/bin/python benchmarks/bot_e2e.py --backbone efficientnetb0 --input-size 224
    .venv/bin/python benchmarks/bot_e2e.py --backbone efficientnetb7 --photos 12 --catalog-size 24
    .venv/bin/python benchmarks/bot_e2e.py --backbone efficientnet-lite0 --weights imagenet \
        --runtime-dir data/runtime        # the exported model (`snapfind export`), no TensorFlow
"""

import argparse
import asyncio
import csv
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback server lives with the tests

from bot.app import attach, connect, make_resources, serve  # noqa: E402
from bot.settings import BotSettings  # noqa: E402
from bot.stats import Stats  # noqa: E402
from index.build import BuildOptions, build_index  # noqa: E402
from retrieval.decode import decode_image  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from retrieval.extractor import Extractor  # noqa: E402
from retrieval.index_store import open_index  # noqa: E402
from retrieval.loading import load_extractor  # noqa: E402
from retrieval.search import SearchService  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from retrieval.tf_runtime import configure_tensorflow  # noqa: E402
from tests.telegram_api import TOKEN, BotApiServer  # noqa: E402
from tests.telegram_api.shapes import CATEGORIES, COLOURS, draw, write_catalog  # noqa: E402

IKEA = ROOT.parent / "shared" / "data" / "ikea" / "catalog.csv"
TELEGRAM_SIDE = 1280


def telegram_jpeg(image: Image.Image) -> bytes:
    """A photo as Telegram hands it to bots: JPEG, long side 1280 px."""
    scale = TELEGRAM_SIDE / max(image.size)
    resized = image.convert("RGB").resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
    )
    out = io.BytesIO()
    resized.save(out, "JPEG", quality=87)
    return out.getvalue()


def ikea_data(work: Path, catalog_size: int, photos: int) -> tuple[Path, list[bytes]]:
    """A catalog of the first IKEA products and query photos from the ones after them."""
    with IKEA.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    catalog = work / "catalog.csv"
    with catalog.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "categories", "image"])
        writer.writeheader()
        for row in rows[:catalog_size]:
            image = (IKEA.parent / row["image"]).resolve()
            writer.writerow(
                {"id": row["id"], "title": row["title"], "categories": row["category"],
                 "image": str(image)}
            )  # fmt: skip
    queries = rows[catalog_size : catalog_size + photos]
    photos = []
    for row in queries:
        with Image.open(IKEA.parent / row["image"]) as image:
            photos.append(telegram_jpeg(image))
    return catalog, photos


def shapes_data(work: Path, photos: int) -> tuple[Path, list[bytes]]:
    catalog = write_catalog(work / "shapes")
    kinds = [(c, k) for c in CATEGORIES for k in COLOURS]
    return catalog, [telegram_jpeg(draw(*kinds[i % len(kinds)], size=512)) for i in range(photos)]


def forward_time(extractor: Embedder, data: bytes) -> float:
    """Seconds of `embed_one` (resize + preprocess + network) on the decoded photo."""
    image = decode_image(data)
    started = time.perf_counter()
    extractor.embed_one(image)
    return time.perf_counter() - started


async def photo_to_album(server: BotApiServer, user: int, photo: bytes) -> float:
    """Seconds from the photo update to the album's arrival; returns once the whole reply
    (album + buttons) is in, so the next measurement starts with an idle bot."""
    mark = len(server.calls)
    started = time.monotonic()
    await server.send_photo(user, photo)
    album = await server.reply(user, "sendMediaGroup", start=mark, timeout=600)
    await server.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == user and "reply_markup" in c.params,
        start=server.calls.index(album),
        timeout=600,
    )
    return album.at - started


async def paired_times(
    server: BotApiServer, extractor: Embedder, photos: list[bytes]
) -> tuple[list[float], list[float]]:
    """One user: each photo's bare forward time, then its photo → album time, alternating, so
    that load from elsewhere on the machine weighs on both alike."""
    forward, e2e = [], []
    for photo in photos:
        forward.append(await asyncio.to_thread(forward_time, extractor, photo))
        e2e.append(await photo_to_album(server, 1001, photo))
    return forward, e2e


async def concurrent_times(server: BotApiServer, photos: list[bytes], users: int) -> list[float]:
    """Latencies of every photo when `users` users each send their share one after another."""

    async def user_loop(user: int, share: list[bytes]) -> list[float]:
        return [await photo_to_album(server, user, photo) for photo in share]

    shares = [photos[i::users] for i in range(users)]
    per_user = await asyncio.gather(
        *(user_loop(5000 + users * 100 + i, share) for i, share in enumerate(shares) if share)
    )
    return [t for times in per_user for t in times]


def summary(times: list[float]) -> str:
    p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
    return f"p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   (n={len(times)})"


def make_extractor(args: argparse.Namespace) -> Embedder:
    """Keras, or with `--runtime-dir` the exported model found there (as the product loads it)."""
    if args.runtime_dir is None:
        configure_tensorflow(threads=args.threads)
        return Extractor(args.backbone, args.weights, args.input_size)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        backbone=args.backbone,
        weights=args.weights,
        input_size=args.input_size,
        runtime_dir=args.runtime_dir,
        threads=args.threads,
    )
    return load_extractor(settings)


async def run(args: argparse.Namespace) -> None:
    extractor = make_extractor(args)
    extractor.warmup()
    with tempfile.TemporaryDirectory(prefix="snapfind-bot-bench-") as tmp:
        work = Path(tmp)
        use_ikea = IKEA.is_file() and not args.shapes
        catalog, photos = (
            ikea_data(work, args.catalog_size, args.photos)
            if use_ikea
            else shapes_data(work, args.photos)
        )
        options = BuildOptions(progress=False, allow_roots=(IKEA.parent,))  # its images
        report = build_index(catalog, work / "index", extractor, options)
        service = SearchService(extractor, open_index(work / "index", extractor.fingerprint))
        rows: list[tuple[int, list[float], list[float], dict[str, float]]] = []
        async with BotApiServer(lifetime=3600) as server:
            for users in args.users:
                settings = BotSettings(
                    _env_file=None,  # type: ignore[call-arg]
                    bot_token=TOKEN,
                    bot_api_url=server.base_url,
                    bot_file_url=server.base_file_url,
                    backbone=args.backbone,
                    weights=args.weights,
                    input_size=extractor.input_size,
                    index_dir=work / "index",
                    rate_limit=100_000,
                    watch_interval=0,
                    request_timeout=600,
                )
                app = await connect(settings)
                res = make_resources(settings, service)
                attach(app, res)
                stop = asyncio.Event()
                serving = asyncio.create_task(serve(app, settings, stop))
                await photo_to_album(server, 1, photos[0])  # first request of a fresh bot
                res.stats = Stats()  # count the measured photos only
                if users == 1:
                    forward, times = await paired_times(server, extractor, photos)
                else:
                    forward, times = [], await concurrent_times(server, photos, users)
                rows.append((users, forward, times, res.stats.stage_means()))
                stop.set()
                await serving

    load = os.getloadavg()[0]
    source = f"IKEA ({report.products} products)" if use_ikea else "drawn shapes (24 products)"
    print(
        f"{extractor.model_name} at {extractor.input_size} px, weights {args.weights}, "
        f"runtime {extractor.runtime_id}; "
        f"catalog: {source}; {len(photos)} query photos, JPEG {TELEGRAM_SIDE} px; "
        f"{os.cpu_count()} CPUs, load average {load:.1f}"
    )
    paired = [r[1] for r in rows if r[1]]
    base = np.percentile(paired[0], 50) if paired else None
    for users, forward, times, stages in rows:
        if forward:
            print(f"bare forward, paired with the 1-user run   {summary(forward)}")
        ratio = f"ratio p50 {np.percentile(times, 50) / base:.2f}×" if base else ""
        if forward:
            pairs = np.median(np.array(times) / np.array(forward))
            ratio += f"  p95 {np.percentile(times, 95) / np.percentile(forward, 95):.2f}×"
            ratio += f"  median per photo {pairs:.2f}×"
        label = f"photo→album, {users} user{'s' if users > 1 else ''}"
        print(f"{label:<42} {summary(times)}   {ratio}")
        means = ", ".join(f"{k} {v * 1000:.1f}" for k, v in stages.items())
        print(f"    stages (mean ms): {means}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="efficientnetb0")
    parser.add_argument("--weights", default="none", help="none costs the same as imagenet")
    parser.add_argument("--input-size", type=int, help="default: the backbone's")
    parser.add_argument("--photos", type=int, default=24, help="query photos per setting")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--catalog-size", type=int, default=60, help="IKEA products indexed")
    parser.add_argument("--shapes", action="store_true", help="drawn shapes even if IKEA exists")
    parser.add_argument("--threads", type=int, default=0, help="inference threads; 0 = all")
    parser.add_argument("--runtime-dir", type=Path, help="serve the model exported there")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
