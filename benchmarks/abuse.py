"""The outside audit's offline cases (issue 11), replayed: hostile images, abusive catalogs,
damaged index files and kill -9 during a build, one line of figures each.

    .venv/bin/python benchmarks/abuse.py [--out docs/reliability.md]

Images go through `SearchService.search_bytes` with EfficientNet-Lite0 (the path a bot photo
takes after its download), files through the CLI's bounded read, catalogs through
`build_index`. Per case: handled (a result or one typed line), the message, the worst latency,
and resident memory before / peak / after (peak from VmHWM, reset before each case).
Bot-level cases run the real PTB bot against the tests' loopback Bot API (127.0.0.1, in this
process): a burst of 50 users × 2 photos, a hostile image ahead of a normal user, 300
sequential queries. Bot kills and API outages are not here.
"""

import argparse
import asyncio
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.settings import BotSettings
from index.build import CACHE, BuildOptions, build_index
from index.catalog import load_catalog
from retrieval.bounded_read import read_image_file
from retrieval.errors import ImageError, SnapfindError
from retrieval.index_store import open_index
from retrieval.limits import DEFAULT_LIMITS
from retrieval.loading import load_extractor
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS
from retrieval.search import SearchService
from retrieval.settings import Settings
from tests.synthetic import draw_item, jpeg_bytes, write_shapes_catalog
from tests.telegram_api import TOKEN, BotApiServer
from tests.telegram_api.harness import running_bot

QUIET = BuildOptions(progress=False)


@dataclass
class Row:
    case: str
    handled: bool
    message: str
    seconds: float
    rss: tuple[float, float, float]  # MiB before, peak, after

    def line(self) -> str:
        before, peak, after = self.rss
        message = self.message if len(self.message) <= 90 else self.message[:89] + "…"
        return (
            f"| {self.case} | {'yes' if self.handled else 'NO'} | {message} | "
            f"{self.seconds * 1000:,.0f} ms | {before:,.0f} / {peak:,.0f} / {after:,.0f} |"
        )


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def measure(case: str, action: Callable[[], str], repeats: int = 1) -> Row:
    """Run `action` (returns the outcome line); a typed error is handled, anything else not."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # VmHWM := VmRSS
    before = _status_mb("VmRSS")
    worst, handled, message = 0.0, True, ""
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            message = action()
        except ImageError as error:
            message = f"ImageError: {error.user_message}"
        except SnapfindError as error:
            message = f"{type(error).__name__}: {error}"
        except Exception as error:  # a finding: reported, not hidden
            handled, message = False, f"UNHANDLED {type(error).__name__}: {error}"
        worst = max(worst, time.perf_counter() - started)
    row = Row(case, handled, message, worst, (before, _status_mb("VmHWM"), _status_mb("VmRSS")))
    print(row.line(), flush=True)
    return row


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    data = bytearray(encoded(Image.new("L", (1, 1)), "PNG"))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def image_cases(service: SearchService, work: Path) -> list[Row]:
    rng = np.random.default_rng(0)

    def search(data: bytes) -> Callable[[], str]:
        def run() -> str:
            hits = service.search_bytes(data).hits
            return f"{len(hits)} results ({len(data):,} bytes)"

        return run

    photo = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).resize(
        (1280, 960), Image.Resampling.BICUBIC
    )
    phone = photo.resize((4000, 3000), Image.Resampling.BICUBIC)
    float_tiff = Image.fromarray(rng.random((480, 640), dtype=np.float32), "F")
    cases: list[tuple[str, bytes]] = [
        ("normal photo 1280×960 JPEG (reference)", encoded(photo, "JPEG", quality=90)),
        ("phone photo 4000×3000 JPEG as a file", encoded(phone, "JPEG", quality=90)),
        ("phone photo 4000×3000 as a PNG file", encoded(phone, "PNG", compress_level=1)),
        ("20000×2 PNG", encoded(Image.new("L", (20_000, 2)), "PNG")),
        ("1,000,000×1 PNG", encoded(Image.new("L", (1_000_000, 1)), "PNG")),
        ("1×15000 PNG", encoded(Image.new("L", (1, 15_000)), "PNG")),
        ("PNG header claiming 60000×60000", png_claiming(60_000, 60_000)),
        ("PNG header claiming 7000×7000, no data", png_claiming(7_000, 7_000)),
        (
            "largest strip allowed: 16384×820 RGB PNG",
            encoded(Image.new("RGB", (16384, 820)), "PNG"),
        ),
        (
            "largest square allowed: 7071×7071 RGB PNG",
            encoded(Image.new("RGB", (7071, 7071)), "PNG"),
        ),
        ("float32 TIFF 0..1", encoded(float_tiff, "TIFF")),
        (
            "16-bit PNG",
            encoded(Image.fromarray((rng.random((480, 640)) * 65535).astype(np.uint16)), "PNG"),
        ),
        ("truncated JPEG", encoded(photo, "JPEG")[:5000]),
        ("random bytes (100 kB)", rng.bytes(100_000)),
        ("empty file", b""),
    ]
    rows = [measure(name, search(data), repeats=3) for name, data in cases]

    def cli_read(path: Path) -> Callable[[], str]:
        return lambda: f"{len(read_image_file(path, DEFAULT_LIMITS.max_bytes)):,} bytes read"

    zero, fifo, sparse = work / "zero.jpg", work / "fifo.jpg", work / "sparse.jpg"
    zero.symlink_to("/dev/zero")
    os.mkfifo(fifo)
    with sparse.open("wb") as handle:
        handle.truncate(3 * 2**30)
    for name, path in (
        ("search: symlink to /dev/zero", zero),
        ("search: FIFO", fifo),
        ("search: 3 GB sparse file", sparse),
    ):
        rows.append(measure(name, cli_read(path)))
    return rows


def catalog_cases(extractor, work: Path) -> list[Row]:
    rows: list[Row] = []
    index_dir = work / "index"
    good = write_shapes_catalog(work / "good", per_category=20)
    build_index(good, index_dir, extractor, QUIET)
    cached = _cache_rows(index_dir)

    broken = work / "broken" / "shop" / "chairs"
    broken.mkdir(parents=True)
    for n in range(20):
        (broken / f"junk{n}.jpg").write_bytes(os.urandom(2000))

    def all_unreadable() -> str:
        try:
            build_index(work / "broken", index_dir, extractor, QUIET)
        finally:
            after = _cache_rows(index_dir)
        return f"built?! cache {cached} → {after}"

    rows.append(measure("all-unreadable catalog after a good build", all_unreadable))
    rows.append(
        measure(
            "  … the vector cache after that failed build",
            lambda: f"{cached} vectors before, {_cache_rows(index_dir)} after",
        )
    )

    shop = work / "hostile" / "shop"
    (shop / "img").mkdir(parents=True)
    draw_item("circles", 1).save(shop / "img" / "ok.jpg")
    os.mkfifo(shop / "img" / "fifo.jpg")
    (shop / "img" / "zero.jpg").symlink_to("/dev/zero")
    (shop / "img" / "out.jpg").symlink_to("/etc/hostname")
    hostile = ["img/ok.jpg", "../../../../etc/passwd", "/etc/hostname", "/proc/self/environ"]
    hostile += ["img/fifo.jpg", "img/zero.jpg", "img/out.jpg"]
    lines = ["id,title,category,image", *(f"r{n},T,c,{p}" for n, p in enumerate(hostile))]
    (shop / "catalog.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def traversal() -> str:
        loaded = load_catalog(shop / "catalog.csv")
        kinds = {
            kind: sum(kind in why for _, why in loaded.unreadable)
            for kind in ("outside the catalog folder", "not a regular file")
        }
        listed = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        return f"{len(loaded.entries)} indexed, {len(loaded.unreadable)} refused ({listed})"

    rows.append(measure("catalog: ../, absolute, /proc, symlink out, FIFO, /dev/zero", traversal))

    csv_base = "id,title,category,image\n1,Sofá,c,img/ok.jpg\n"
    variants = {
        "catalog: UTF-16 CSV (Excel)": csv_base.encode("utf-16"),
        "catalog: Latin-1 CSV": csv_base.encode("latin-1"),
        "catalog: 140,000-character field": (
            csv_base + f'2,"{"a" * 140_000}",c,img/ok.jpg\n'
        ).encode(),
        "catalog: no image column": b"id,title,picture\n1,Sofa,sofa.jpg\n",
    }
    for name, data in variants.items():
        path = shop / "variant.csv"
        path.write_bytes(data)
        rows.append(measure(name, lambda p=path: f"{len(load_catalog(p).entries)} entries read"))

    rows.append(
        measure(
            "two builds into one folder at once", lambda: _concurrent(good, index_dir, extractor)
        )
    )
    rows.append(_kill_during_build(extractor, work))
    rows += _damaged_index(index_dir, work, extractor)
    return rows


def _cache_rows(index_dir: Path) -> int:
    (db,) = (index_dir / CACHE).glob("*.sqlite")
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]


def _concurrent(catalog: Path, index_dir: Path, extractor) -> str:
    """Hold the lock from another process (as a running build does), then start a build."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys;h=open(sys.argv[1],'a+');"
         "fcntl.flock(h,2);print('locked',flush=True);sys.stdin.read()",
         str(index_dir / ".build.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        holder.stdout.readline()
        return str(build_index(catalog, index_dir, extractor, QUIET))
    finally:
        holder.kill()
        holder.wait()


def _kill_during_build(extractor, work: Path) -> Row:
    """kill -9 a `snapfind index build` mid-embedding; the old index must serve, the resume
    must re-embed nothing already cached, and the lock must be free."""
    catalog = write_shapes_catalog(work / "big", per_category=100)
    index_dir = work / "killed"
    build_index(write_shapes_catalog(work / "small", per_category=2), index_dir, extractor, QUIET)
    old = (index_dir / "current").resolve()
    env = os.environ | {"SNAPFIND_BACKBONE": "efficientnet-lite0", "SNAPFIND_WEIGHTS": "imagenet"}
    command = [sys.executable, "-m", "snapfind", "index", "build", "--catalog", str(catalog)]
    command += ["--out", str(index_dir), "--no-progress"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _cache_rows(index_dir) < 6 + 64 and time.monotonic() < deadline:
        time.sleep(0.2)  # waits for the event: vectors of the new catalog in the cache
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    cached = _cache_rows(index_dir)

    def after_kill() -> str:
        serving = open_index(index_dir, extractor.fingerprint)
        assert serving.release == old, "current moved"
        report = build_index(catalog, index_dir, extractor, QUIET)
        return (
            f"old index served ({len(serving)} products); resume: embedded {report.embedded}, "
            f"reused {report.reused} (cache had {cached})"
        )

    return measure("kill -9 during build, then resume", after_kill)


def _damaged_index(index_dir: Path, work: Path, extractor) -> list[Row]:
    release = (index_dir / "current").resolve()
    rows = []
    damages = {
        "truncated vectors.faiss": (VECTORS, lambda p: p.write_bytes(p.read_bytes()[:1000])),
        "corrupt products.sqlite": (PRODUCTS, lambda p: p.write_bytes(os.urandom(8192))),
        "invalid manifest.json": (MANIFEST, lambda p: p.write_text("{nope", encoding="utf-8")),
    }
    for name, (file, damage) in damages.items():
        copy = work / f"damaged-{file}"
        shutil.copytree(release, copy)
        damage(copy / file)
        rows.append(measure(name, lambda c=copy: f"opened?! {len(open_index(c))}"))
    return rows


async def bot_cases(service: SearchService, work: Path) -> list[Row]:
    """The running bot, over HTTP on 127.0.0.1: bursts, a hostile image, a long sequence."""
    photos = [jpeg_bytes(draw_item("circles", seed=n, size=640)) for n in range(300)]
    hostile = encoded(Image.new("RGB", (7071, 7071)), "PNG")
    rows = []
    async with BotApiServer(lifetime=3600) as server:
        settings = BotSettings(
            _env_file=None,  # type: ignore[call-arg]
            bot_token=TOKEN,
            bot_api_url=server.base_url,
            bot_file_url=server.base_file_url,
            backbone="efficientnet-lite0",
            weights="imagenet",
            index_dir=service.index_dir,
            rate_limit=100_000,
            watch_interval=0,
            request_timeout=600,
        )
        async with running_bot(settings, service):
            await _replies(server, {1: [photos[0]]})  # the bot's first request
            rows.append(
                await _measure_async("bot: one normal photo (reference)", server, {2: [photos[1]]})
            )
            burst = {100 + u: [photos[2 + 2 * u], photos[3 + 2 * u]] for u in range(50)}
            rows.append(await _measure_async("bot: burst of 50 users × 2 photos", server, burst))
            rows.append(
                await _measure_async(
                    "bot: 7071×7071 PNG file, then another user's photo",
                    server,
                    {300: [("png", hostile)], 301: [photos[150]]},
                    watch=301,
                )
            )
            sequence = {400: photos[160:300] + photos[2:162]}  # 300 queries, one at a time
            rows.append(
                await _measure_async(
                    "bot: 300 sequential queries", server, sequence, one_by_one=True
                )
            )
    return rows


async def _measure_async(
    case: str,
    server: BotApiServer,
    sends: dict[int, list],
    *,
    watch: int | None = None,
    one_by_one: bool = False,
) -> Row:
    """Like `measure`, for the bot: replies delivered, lost, duplicated, sent elsewhere."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_mb("VmRSS")
    mark = len(server.calls)
    started = time.monotonic()
    if one_by_one:
        latencies = []
        for user, items in sends.items():
            for item in items:
                begun = time.monotonic()
                await _replies(server, {user: [item]})
                latencies.append(time.monotonic() - begun)
        worst = max(latencies)
        counts = _reply_counts(server, mark)
    else:
        counts, finished = await _replies(server, sends)
        worst = max(finished.values()) - started if watch is None else finished[watch] - started
    expected = {user: len(items) for user, items in sends.items()}
    lost = sum(max(0, n - counts.get(u, 0)) for u, n in expected.items())
    duplicated = sum(max(0, counts.get(u, 0) - n) for u, n in expected.items())
    elsewhere = sum(n for u, n in counts.items() if u not in expected)
    refusals = [c.params["text"] for c in server.calls[mark:] if _is_refusal(c)]
    message = (
        f"{sum(expected.values())} sent: {sum(counts.values())} answered, {lost} lost, "
        f"{duplicated} duplicated, {elsewhere} to another chat"
        + (f"; refusals: {sorted(set(refusals))}" if refusals else "")
    )
    row = Row(case, not (lost or duplicated or elsewhere), message, worst,
              (before, _status_mb("VmHWM"), _status_mb("VmRSS")))  # fmt: skip
    print(row.line(), flush=True)
    return row


def _is_refusal(call) -> bool:
    return call.method == "sendMessage" and "reply_markup" not in call.params


def _reply_counts(server: BotApiServer, mark: int) -> dict[int, int]:
    """Answers per chat since `mark`: an album, or a refusal line."""
    counts: dict[int, int] = {}
    for call in server.calls[mark:]:
        if call.method == "sendMediaGroup" or _is_refusal(call):
            counts[call.chat_id] = counts.get(call.chat_id, 0) + 1
    return counts


async def _replies(
    server: BotApiServer, sends: dict[int, list], timeout: float = 900
) -> tuple[dict[int, int], dict[int, float]]:
    """Send everything at once; wait until every photo has its answer (album or refusal)."""
    mark = len(server.calls)
    for user, items in sends.items():
        for item in items:
            if isinstance(item, tuple):
                await server.send_document(user, item[1], file_name="x.png", mime_type="image/png")
            else:
                await server.send_photo(user, item)
    wanted = sum(len(items) for items in sends.values())
    finished: dict[int, float] = {}

    def done(call) -> bool:
        if (call.method == "sendMediaGroup" or _is_refusal(call)) and call.chat_id in sends:
            finished[call.chat_id] = call.at
        return sum(_reply_counts(server, mark).values()) >= wanted

    await server.wait_for(done, start=mark, timeout=timeout)
    await asyncio.sleep(0.5)  # let a duplicate, if the bot sent one, arrive before counting
    return _reply_counts(server, mark), finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--no-bot", action="store_true", help="skip the loopback bot cases")
    args = parser.parse_args()
    settings = Settings(backbone="efficientnet-lite0", weights="imagenet", _env_file=None)
    extractor = load_extractor(settings, warmup=True)
    print(f"load: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    header = "| case | handled | message | worst latency | RSS MiB before / peak / after |"
    print(header + "\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        build_index(write_shapes_catalog(work / "c", per_category=10), work / "i", extractor, QUIET)
        index = open_index(work / "i")
        service = SearchService(extractor, index, work / "i", limits=settings.image_limits)
        rows = image_cases(service, work)
        rows += catalog_cases(extractor, work)
        if not args.no_bot:
            rows += asyncio.run(bot_cases(service, work))
    if args.out:
        table = "\n".join([header, "|---|---|---|---|---|", *(r.line() for r in rows)])
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0 if all(r.handled for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
