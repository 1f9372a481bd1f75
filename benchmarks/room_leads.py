"""Which of a room photo's objects should lead its first album, and what the rooms can reward.

Over `../shared/data/ikea-rooms` against an index built with `--objects`: every object of
each room is searched from its box pooled from the region map (no cut-out, so every object is
on the same footing), and lead rules are replayed on those pages: hit@5 of the lead object's
first page (a room's listed product among its 5). The oracle takes the best object of each
room, as a shopper pressing the right button would. Then the lead's label (kind-first, the
shipped rule) against the categories of the products the room lists: a lead whose kind no
listed product shares cannot be a hit unless its page strays into another category.

    .venv/bin/python benchmarks/room_leads.py --index INDEX
"""

import argparse
import csv
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.loading import load_service
from retrieval.objects import ObjectFinder, photo_kind
from retrieval.regions import region_encoder_for
from retrieval.results import MIN_OBJECTS, Page
from retrieval.settings import Settings


@dataclass(frozen=True)
class Candidate:
    """One object of a room, as the lead rules see it."""

    label: str
    top_cosine: float  # its first product's similarity
    area: float  # share of the photo its box covers
    hit: bool  # a product the room lists is among its first 5


@dataclass(frozen=True)
class Room:
    kind: str  # the whole photo's first product's category (`photo_kind`)
    whole_hit: bool
    listed_kinds: set[str]  # categories of the products the room lists
    objects: list[Candidate]  # the map's order


Rule = Callable[[Room], int]

RULES: dict[str, Rule] = {
    "the map's order": lambda room: 0,
    "the photo's kind first (shipped)": lambda room: next(
        (i for i, o in enumerate(room.objects) if o.label == room.kind), 0
    ),
    "the largest box": lambda room: max(
        range(len(room.objects)), key=lambda i: room.objects[i].area
    ),
    "the highest first cosine": lambda room: max(
        range(len(room.objects)), key=lambda i: room.objects[i].top_cosine
    ),
}


def read_rooms(args: argparse.Namespace) -> list[Room]:
    """Every room's whole-photo result and objects, pooled from one forward pass each."""
    service = load_service(Settings(backbone=args.backbone, index_dir=args.index))
    encoder = region_encoder_for(service.extractor)
    finder = ObjectFinder(encoder, service.index, cut_outs=0)
    with args.catalog.open(newline="", encoding="utf-8") as handle:
        category = {row["id"]: row["category"] for row in csv.DictReader(handle)}
    with (args.rooms / "rooms.csv").open(newline="", encoding="utf-8") as handle:
        listed = list(csv.DictReader(handle))
    rooms = []
    for row in listed:
        truth = set(row["product_ids"].split())
        image = service.decode((args.rooms / row["room_image"]).read_bytes())
        regions = encoder.regions(image)
        whole = service.index.search(regions.whole, Page(5))
        height, width = image.shape[:2]
        objects = [
            Candidate(
                found.label,
                found.hits[0].score,
                (found.box.right - found.box.left)
                * (found.box.bottom - found.box.top)
                / (height * width),
                any(hit.product.id in truth for hit in found.hits),
            )
            for found in finder.find(image, 5, regions)
        ]
        whole_hit = any(hit.product.id in truth for hit in whole)
        kinds = {category.get(pid, "?") for pid in truth}
        rooms.append(Room(photo_kind(whole), whole_hit, kinds, objects))
    return rooms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="built with --objects")
    parser.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea-rooms"))
    parser.add_argument(
        "--catalog", type=Path, default=Path("../shared/data/ikea/catalog.csv"), help="id,category"
    )
    parser.add_argument("--backbone", default="efficientnet-lite0")
    args = parser.parse_args()
    rooms = read_rooms(args)
    boxed = [room for room in rooms if len(room.objects) >= MIN_OBJECTS]
    print(f"{len(rooms)} rooms, {len(boxed)} with {MIN_OBJECTS} objects or more")
    print("| lead (pooled pages) | hit@5 |\n|---|---|")
    whole = statistics.mean(r.whole_hit for r in rooms)
    print(f"| whole photo (the region map's mean) | {whole:.3f} |")

    def lead_hit(room: Room, rule: Rule) -> bool:
        return room.objects[rule(room)].hit if len(room.objects) >= MIN_OBJECTS else room.whole_hit

    for name, rule in RULES.items():
        print(f"| {name} | {statistics.mean(lead_hit(r, rule) for r in rooms):.3f} |")
    best = statistics.mean(r.whole_hit or any(o.hit for o in r.objects) for r in rooms)
    print(f"| oracle: any object or the whole photo | {best:.3f} |")
    shipped = RULES["the photo's kind first (shipped)"]
    leads = [(room, room.objects[shipped(room)]) for room in boxed]
    shared = [lead.hit for room, lead in leads if lead.label in room.listed_kinds]
    other = [lead.hit for room, lead in leads if lead.label not in room.listed_kinds]
    print(
        f"\nshipped lead's label among the room's listed categories: {len(shared)} rooms, "
        f"{sum(shared)} hits; not among them: {len(other)} rooms, {sum(other)} hits"
    )
    print("leads by label:", dict(Counter(lead.label for _, lead in leads).most_common()))
    print(
        "rooms listing each category:",
        dict(Counter(kind for room in rooms for kind in room.listed_kinds).most_common()),
    )


if __name__ == "__main__":
    main()
