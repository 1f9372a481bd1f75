"""What the object step's forward pass costs against a whole-photo query, per backbone.

The object step runs the backbone once, without pooling, at the region side
(`retrieval.feature_map.region_side`); a whole-photo query runs it once at the query side.
Both are timed on the same room photos in one process (Keras; random weights are fine for
cost), median over photos after a warm-up. Box scoring and the per-object searches come on
top (rooms_bench measures the whole step with Lite0).

    .venv/bin/python benchmarks/objects_cost.py --backbone efficientnetb7 --weights none
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.decode import decode_image
from retrieval.extractor import Extractor
from retrieval.regions import region_encoder_for
from retrieval.tf_runtime import configure_tensorflow


def median_ms(run, images) -> float:
    run(images[0])  # warm-up: traces the graph
    times = []
    for image in images:
        started = time.perf_counter()
        run(image)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", action="append", help="repeatable")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea-rooms"))
    parser.add_argument("--photos", type=int, default=5)
    args = parser.parse_args()
    configure_tensorflow()
    with (args.rooms / "rooms.csv").open(newline="", encoding="utf-8") as handle:
        names = [row["room_image"] for row in csv.DictReader(handle)][: args.photos]
    photos = [decode_image((args.rooms / name).read_bytes()) for name in names]
    print("| backbone | query side | whole photo ms | region side | region pass ms | × whole |")
    print("|---|---|---|---|---|---|")
    for name in args.backbone or ["efficientnet-lite0", "efficientnetb7"]:
        extractor = Extractor(name, args.weights)
        encoder = region_encoder_for(extractor)
        whole = median_ms(extractor.embed_one, photos)
        regions = median_ms(encoder.regions, photos)
        print(
            f"| {name} | {extractor.input_size} | {whole:.0f} | {encoder.side} | "
            f"{regions:.0f} | {regions / whole:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
