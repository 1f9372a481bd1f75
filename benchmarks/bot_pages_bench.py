"""What a shopper's first page shows for a room photo: the bot's pages against the finder's.

The bot answers a room with object 1's album at once and one button per object; its pages are
`search_vector` from each object's vector (plain cosine), so More / Only / Similar page through
the same ranking. The finder itself re-ranks each object's products by CSLS. This measures, on
the IKEA rooms, through the bot's own calls (`decode`, `search_objects`, `search_vector`):
hit@5 (a product of the room among the page's 5) and P@5 of the first page the bot sends, and
of the best page one tap away, for both rankings.

    .venv/bin/python benchmarks/bot_pages_bench.py --index IKEA_INDEX \\
        --rooms ../shared/data/ikea-rooms
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.loading import load_service
from retrieval.results import Page
from retrieval.settings import Settings

PAGE = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="a published index directory")
    parser.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea-rooms"))
    parser.add_argument("--limit", type=int, help="only the first N rooms")
    args = parser.parse_args()
    service = load_service(Settings(index_dir=args.index))
    with (args.rooms / "rooms.csv").open(newline="", encoding="utf-8") as handle:
        rooms = list(csv.DictReader(handle))[: args.limit]
    rows: dict[str, list[tuple[float, float]]] = {}
    counts, seconds = [], []
    for n, room in enumerate(rooms, 1):
        truth = set(room["product_ids"].split())
        data = (args.rooms / room["room_image"]).read_bytes()
        image = service.decode(data)
        started = time.perf_counter()
        found = service.search_objects(image, PAGE, data)
        seconds.append(time.perf_counter() - started)
        counts.append(len(found.objects))
        whole = [h.product.id for h in found.whole.hits]
        reranked = [[h.product.id for h in o.result.hits] for o in found.objects] or [whole]
        plain = [
            [h.product.id for h in service.search_vector(o.result.vector, Page(PAGE))]
            for o in found.objects
        ] or [whole]
        pages = {
            "whole photo (objects off, or < 2 objects)": [whole],
            "object 1, CSLS re-ranked (the finder's hits)": reranked[:1],
            "object 1, plain cosine (the bot's pages)": plain[:1],
            "best object one tap away, CSLS re-ranked": reranked,
            "best object one tap away, plain cosine (the bot)": plain,
        }
        for name, candidates in pages.items():
            best = max(candidates, key=lambda page: sum(pid in truth for pid in page))
            hits = sum(pid in truth for pid in best[:PAGE])
            rows.setdefault(name, []).append((float(hits > 0), hits / PAGE))
        print(f"\r{n}/{len(rooms)} rooms", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(
        f"{len(rooms)} rooms, {len(service.index)} products, {service.extractor.model_name}; "
        f"objects per room: median {statistics.median(counts)}, "
        f"{sum(c >= 2 for c in counts)}/{len(rooms)} rooms get the object reply; "
        f"search_objects median {1000 * statistics.median(seconds):.0f} ms"
    )
    print()
    print("| first page | hit@5 | P@5 |")
    print("|---|---|---|")
    for name, values in rows.items():
        hit, precision = np.mean(values, axis=0)
        print(f"| {name} | {hit:.3f} | {precision:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
