"""The outside audit's offline cases (issue 11), replayed: hostile images, abusive catalogs,
damaged index files and kill -9 during a build, one line of figures each.

    .venv/bin/python benchmarks/abuse.py [--out docs/reliability.md]

Images go through `SearchService.search_bytes` with EfficientNet-Lite0 (the path a bot photo
takes after its download), files through the CLI's bounded read, catalogs through
`build_index`. Per case: handled (a result or one typed line), the message, the worst latency,
and resident memory before / peak / after (peak from VmHWM, reset before each case).
Bot-level cases (loopback Bot API burst, 300 sequential queries, bot kills) are not here.
"""

import argparse
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
from tests.synthetic import draw_item, write_shapes_catalog

MB = 2**20
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
            hits = service.search_bytes(data, 5).hits
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    settings = Settings(backbone="efficientnet-lite0", weights="imagenet", _env_file=None)
    extractor = load_extractor(settings, warmup=True)
    print(f"load: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    header = "| case | handled | message | worst latency | RSS MiB before / peak / after |"
    print(header + "\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        build_index(write_shapes_catalog(work / "c", per_category=10), work / "i", extractor, QUIET)
        service = SearchService(extractor, open_index(work / "i"), limits=settings.image_limits)
        rows = image_cases(service, work)
        rows += catalog_cases(extractor, work)
    if args.out:
        table = "\n".join([header, "|---|---|---|---|---|", *(r.line() for r in rows)])
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0 if all(r.handled for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
