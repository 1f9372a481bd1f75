"""Index build throughput on a real catalog: a full build, an incremental re-run, then queries.

Runs the product's own `index.build.build_index` into a temporary directory (deleted after):
a `--full` build (images/s over its whole run: hashing, decoding, embedding, writing,
publishing), then the same build again incrementally, where nothing changed and nothing
should be embedded. Finally `--queries` catalog images are sent through `SearchService.
search_bytes` as a shopper's upload would be, timing each stage and checking that each finds
its own product first.

    .venv/bin/python benchmarks/build_bench.py --catalog ../shared/data/ikea/catalog.csv \\
        --backbone efficientnetb0 --limit 300
"""

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.tf_runtime import configure_tensorflow


def subset_csv(catalog: Path, limit: int, folder: Path) -> Path:
    """The first `limit` rows of a CSV catalog, image paths made absolute, written in `folder`."""
    subset = folder / f"first-{limit}.csv"
    with catalog.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        with subset.open("w", newline="", encoding="utf-8") as target:
            writer = csv.DictWriter(target, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            for number, row in enumerate(reader):
                if number == limit:
                    break
                writer.writerow(row | {"image": str((catalog.parent / row["image"]).resolve())})
    return subset


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stage_line(label: str, seconds: list[float]) -> str:
    millis = np.array(seconds) * 1000
    return (
        f"  {label:<10}{statistics.median(millis):>10.1f}{np.percentile(millis, 95):>10.1f}"
        f"{millis.mean():>10.1f}"
    )


def load(args: argparse.Namespace):
    """The exported runtime extractor under `--runtime-dir`, else the Keras one."""
    if args.runtime_dir is not None:
        from retrieval.runtime_extractor import load_runtime_extractor
        from retrieval.settings import Settings

        settings = Settings(
            backbone=args.backbone,
            weights=args.weights,
            input_size=args.input_size,
            runtime_dir=args.runtime_dir,
            threads=args.threads,
        )
        extractor = load_runtime_extractor(settings)
        if extractor is not None:
            return extractor
        raise SystemExit(f"nothing exported for {args.backbone} in {args.runtime_dir}")
    configure_tensorflow(threads=args.threads, onednn=args.onednn == "on")
    from retrieval.extractor import Extractor

    return Extractor(args.backbone, args.weights, args.input_size)


def bare_forward_rate(extractor, batch: int, seconds: float = 10.0) -> float:
    """Images/s of the network alone on one prepared batch, repeated for about `seconds`."""
    prepared = extractor.prepare([np.full((500, 500, 3), 200, dtype=np.uint8)] * batch)
    extractor.embed_prepared(prepared)  # first call at this shape: untimed
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        extractor.embed_prepared(prepared)
        images += batch
    return images / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="folder, CSV or JSONL")
    parser.add_argument("--backbone", default="efficientnetb0", help="registry name")
    parser.add_argument("--weights", default="none", help="imagenet | none | weights file")
    parser.add_argument("--input-size", type=int, default=None, help="default: the backbone's")
    parser.add_argument("--batch", type=int, default=16, help="images per extractor call")
    parser.add_argument("--limit", type=int, default=0, help="first N rows of a CSV; 0 = all")
    parser.add_argument("--queries", type=int, default=50, help="catalog images queried after")
    parser.add_argument("--onednn", choices=("on", "off"), default="off")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads; 0 = all")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--runtime-dir", type=Path, help="serve the exported model found here (snapfind export)"
    )
    args = parser.parse_args(argv)
    if args.limit and args.catalog.suffix.lower() != ".csv":
        parser.error("--limit works on a CSV catalog")

    from index.build import BuildOptions, build_index
    from index.catalog import load_catalog
    from retrieval.index_store import open_index
    from retrieval.search import SearchService

    with tempfile.TemporaryDirectory(prefix="snapfind-build-bench-") as tmp:
        work = Path(tmp)
        catalog = subset_csv(args.catalog, args.limit, work) if args.limit else args.catalog
        started = time.perf_counter()
        extractor = load(args)
        model_seconds = time.perf_counter() - started
        warmup = extractor.warmup()
        forward_rate = bare_forward_rate(extractor, args.batch)
        options = BuildOptions(full=True, progress=not args.no_progress, batch_size=args.batch)
        full = build_index(catalog, work / "index", extractor, options)
        started = time.perf_counter()
        entries = load_catalog(catalog).entries
        read_seconds = time.perf_counter() - started
        options = BuildOptions(full=False, progress=not args.no_progress, batch_size=args.batch)
        again = build_index(catalog, work / "index", extractor, options)

        service = SearchService(extractor, open_index(work / "index", extractor.fingerprint))
        stages: dict[str, list[float]] = {}
        first, total = 0, []
        for entry in entries[: args.queries]:
            data = entry.image.read_bytes()
            started = time.perf_counter()
            result = service.search_bytes(data)
            total.append(time.perf_counter() - started)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            first += bool(result.hits) and result.hits[0].product.id == entry.id
        asked = len(total)

    print(
        f"\n{extractor.model_name} at {extractor.input_size} px, weights {args.weights}, "
        f"oneDNN {args.onednn}, batch {args.batch}; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}; catalog {args.catalog}"
        + (f" (first {args.limit} rows)" if args.limit else "")
    )
    print(f"  model build {model_seconds:.1f} s, warm-up {warmup:.2f} s (not in the builds)")
    print(f"  {extractor.runtime_id}: bare batched forward {forward_rate:.1f} images/s")
    print(f"{'build':<14}{'seconds':>9}{'embedded':>10}{'reused':>8}{'images/s':>10}  index")
    for label, report in (("full", full), ("incremental", again)):
        rate = report.embedded / report.seconds if report.embedded else 0.0
        print(
            f"{label:<14}{report.seconds:>9.1f}{report.embedded:>10}{report.reused:>8}"
            f"{rate:>10.1f}  ({rate / forward_rate:.2f}× bare forward) {report.index_key}, "
            f"{report.products} products, "
            f"{report.vectors} vectors, {report.unreadable} unreadable"
        )
    print(f"  reading + hashing the catalog alone: {read_seconds:.1f} s")
    print(f"queries: {asked} catalog images through SearchService.search_bytes, ms per stage")
    print(f"  {'stage':<10}{'median':>10}{'p95':>10}{'mean':>10}")
    for stage, seconds in stages.items():
        print(stage_line(stage, seconds))
    print(stage_line("total", total))
    print(f"  own product first: {first}/{asked}")
    print(f"peak resident memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
