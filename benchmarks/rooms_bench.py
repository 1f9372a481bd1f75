"""Room photos → the catalog products in them: whole photo vs 3×3 grid vs detected objects.

Every variant runs through the product's own calls (decode → regions → vectors → index
search) on the same photos in one run. Quality ranks the whole catalog (k = every product);
time is a separate pass per photo at the product's page size (k = 10), median over photos.

An object variant is scored four ways: the first object's list (what a shopper sees first:
the bot sends the most prominent object's album at once), the same object searched plainly by
its vector, the same vector re-ranked against the hub pictures as a press on its button does
(`search_object_vector`: no photo needed), and the objects' lists interleaved (first of object
1, first of object 2, ...: a tap on every button); bench-only variants by their first object
alone. The first album as served is the bot's decision on top: the index's room probe, then
the default's first object (or the detector's, in a row of its own) where the photo shows a
room with two objects or more, else the whole photo's album (through `ObjectSearch.search`
itself, and replayed for other draws).
Under the table, every album the served reply offers (the first, each object's button, Whole
photo): how often some album's first page holds a product of the room.
`--draws` scores every object variant's first object and interleaved list again over other
pseudo-room draws (the region hubness recomputed as the build would, with other seeds), since
one draw moves these figures by up to ±0.10. Photos are decoded as the product decodes them
(`SearchService.decode`). An object variant's time is its object step alone (decode +
`ObjectFinder.find`); the lines under the
table are the detector alone and a room photo as the bot serves it (`ObjectSearch.search`:
map boxes only, with the detector, with the map's first box cut out (the default) or its
best two — the region pass, the whole-photo search from its map and the object step), and
as it was served before the fourth pass (the whole query's own forward, then the object
step).

    .venv/bin/snapfind index build --catalog ../shared/data/ikea/catalog.csv --out IDX --objects
    .venv/bin/python benchmarks/rooms_bench.py --index IDX --rooms ../shared/data/ikea-rooms \\
        --annotate benchmarks/out --draws 1:150,2:150,3:150
"""

import argparse
import csv
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.pseudo_rooms import CatalogPictures, Draw, pseudo_rooms
from index.region_hubness import region_hubness
from retrieval.annotate import draw_objects
from retrieval.decode import decode_image
from retrieval.detector import Detector
from retrieval.loading import load_service
from retrieval.object_options import CUT_OUTS, ObjectOptions
from retrieval.object_search import ObjectSearch, room_kind
from retrieval.objects import DetectedObject, ObjectFinder, looks_like_product_photo
from retrieval.regions import cells_of, region_encoder_for
from retrieval.results import MIN_OBJECTS, ObjectsResult, Page, QueryResult
from retrieval.search import SearchService
from retrieval.settings import Settings

PAGE = 10  # products per answer in the timed pass
SERVED_BEFORE = "room photo as served before (decode + whole query + object step)"
SERVED_MAP = "room photo as served, map boxes only (decode + region pass + whole search + objects)"
SERVED_DETECTED = "room photo as served with the detector (+ detector + cut-out forward)"
SERVED_CUT = {
    1: "room photo as served with the map's first box cut out (default: + 1 query forward)",
    2: "room photo as served with the map's best 2 boxes cut out (+ 2 query forwards, 1 batch)",
}

Ranker = Callable[[bytes, int], dict[str, list[str]]]  # (photo, k) → named rankings of ids


def whole_photo(service: SearchService) -> Ranker:
    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        return {"": [h.product.id for h in service.search_bytes(data, Page(k)).hits]}

    return rank


def whole_from_map(finder: ObjectFinder, service: SearchService) -> Ranker:
    """The whole photo's vector as a room photo is served now: the region map's mean."""

    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        vector = finder.encoder.regions(service.decode(data)).whole
        return {"": [h.product.id for h in service.index.search(vector, Page(k))]}

    return rank


def grid(service: SearchService) -> Ranker:
    """The photo plus 9 half-size crops (3×3, overlapping by half), merged by best score."""

    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        image = decode_image(data, min_side=2 * service.extractor.input_size)
        height, width = image.shape[:2]
        crops = [image] + [
            image[y : y + height // 2, x : x + width // 2]
            for y in (0, height // 4, height // 2)
            for x in (0, width // 4, width // 2)
        ]
        best: dict[str, float] = {}
        for vector in service.extractor.embed(crops):
            for hit in service.index.search(vector, Page(k)):
                best[hit.product.id] = max(best.get(hit.product.id, -2.0), hit.score)
        return {"": sorted(best, key=best.__getitem__, reverse=True)[:k]}

    return rank


def object_step(
    finder: ObjectFinder, service: SearchService
) -> Callable[[bytes, int], list[DetectedObject]]:
    """What the object step costs: decode (as the product does) and find, no whole query."""
    return lambda data, k: finder.find(service.decode(data), k, sharp=service.cut_out_source(data))


def served(search: ObjectSearch, service: SearchService) -> Callable[[bytes, int], ObjectsResult]:
    """A room photo as `search_objects` serves it, with or without the detector: the
    product's own `ObjectSearch.search`."""

    def serve(data: bytes, k: int) -> ObjectsResult:
        image = service.decode(data)
        whole = Page(k)
        return search.search(
            image,
            service.index,
            k,
            lambda: service.search_image(image, whole),
            service.cut_out_source(data),
        )

    return serve


def objects(finder: ObjectFinder, service: SearchService) -> Ranker:
    """The first object's list, the same object searched plainly and as a press re-ranks it,
    and all objects interleaved; the photo decoded as the product decodes it."""

    step = object_step(finder, service)

    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        found = step(data, k)
        if not found:  # a product photo: the whole-photo search, as the product does
            whole = [h.product.id for h in service.search_bytes(data, Page(k)).hits]
            return dict.fromkeys((FIRST, PLAIN, PRESS, INTERLEAVED), whole)
        merged: dict[str, None] = {}  # ordered, with O(1) membership
        for depth in range(k):
            for item in found:
                if depth < len(item.hits):
                    merged.setdefault(item.hits[depth].product.id)
        return {
            FIRST: [h.product.id for h in found[0].hits],
            PLAIN: [h.product.id for h in service.index.search(found[0].vector, Page(k))],
            PRESS: [
                h.product.id for h in finder.rank(found[0].vector, Page(k), None, found[0].kind)
            ],
            INTERLEAVED: list(merged)[:k],
        }

    return rank


def first_album(search: ObjectSearch, service: SearchService) -> Ranker:
    """What the bot sends first, through the product's own `ObjectSearch.search`: the first
    object's album where the room probe sees a room with MIN_OBJECTS objects or more, else the
    whole photo's (`ObjectsResult.first`)."""

    serve = served(search, service)

    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        return {"": [h.product.id for h in serve(data, k).first.hits]}

    return rank


def every_button(
    search: ObjectSearch, service: SearchService
) -> Callable[[bytes], list[list[str]]]:
    """Every album the reply offers, as a shopper who taps each button sees it: the album sent
    at once, each boxed object's press (`ObjectSearch.rank` from its cached vector and kind, as
    `search_object_vector` serves it) and "Whole photo"; a photo without boxes, its one album.
    Each list is the first two pages (10): hit@5 asks whether some album's first page holds a
    product of the room, hit@10 whether its More does."""

    serve = served(search, service)

    def albums(data: bytes) -> list[list[str]]:
        page = Page(PAGE)  # two pages of 5
        found = serve(data, page.k)
        shown = [found.first.hits] + [
            search.rank(item.result.vector, service.index, page, item.kind) for item in found.shown
        ]
        if found.shown:
            shown.append(found.whole.hits)
        return [[h.product.id for h in hits] for hits in shown]

    return albums


def first_album_of(finder: ObjectFinder, service: SearchService) -> Ranker:
    """The same decision over another draw's finder (`ObjectSearch` builds its own from the
    index's draw): the index's room probe, then the finder's objects."""
    probe = service.index.room_probe(finder.encoder.side)

    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        image = service.decode(data)
        if looks_like_product_photo(image):
            return {FIRST: [h.product.id for h in service.search_image(image, Page(k)).hits]}
        regions = finder.encoder.regions(image)
        whole = service.index.search(regions.whole, Page(k))
        if probe is None or probe.shows_room(regions.scene):
            kind = room_kind(regions.whole, service.index, QueryResult(regions.whole, whole))
            found = finder.find(image, k, regions, kind, service.cut_out_source(data))
            if len(found) >= MIN_OBJECTS:
                return {FIRST: [h.product.id for h in found[0].hits]}
        return {FIRST: [h.product.id for h in whole]}

    return rank


def first_only(rank: Ranker) -> Ranker:
    """Only the first object's list of an object variant (a row of its own, not four)."""
    return lambda data, k: {FIRST: rank(data, k)[FIRST]}


def detector_pooled(finder: ObjectFinder, service: SearchService) -> Ranker:
    """Not the product: the detector's most probable box pooled from the region map (no second
    forward) instead of cut out, ranked as a map box is (the map's first object where the
    detector finds nothing)."""

    def rank(data: bytes, k: int) -> dict[str, list[str]]:
        image = service.decode(data)
        regions = finder.encoder.regions(image)
        found = finder.detector.detect(image)
        if not found.labels:
            first = finder.find(image, k, regions, sharp=service.cut_out_source(data))
            return {FIRST: [h.product.id for h in first[0].hits] if first else []}
        cells = cells_of(found.boxes[:1], regions.content.shape[:2])
        vector = replace(regions, cells=cells).vectors()[0]
        return {FIRST: [h.product.id for h in finder.rank(vector, Page(k))]}

    return rank


def served_before(finder: ObjectFinder, service: SearchService) -> Callable[[bytes, int], object]:
    """A room photo as served before this session: the whole query's forward, then the object
    step's (two forwards)."""

    def serve(data: bytes, k: int) -> object:
        image = service.decode(data)
        return service.search_image(image, Page(k)), finder.find(image, k)

    return serve


FIRST, PLAIN, INTERLEAVED = "first object", "first object, plain search", "interleaved"
PRESS = "first object, press (hubness re-rank)"
DRAWN_WAYS = (FIRST, INTERLEAVED)  # what --draws scores again: the album sent, every button
POOLED = "objects, map boxes only (SNAPFIND_OBJECT_CUT_OUT=false)"
DETECTED = "objects, detector box cut out + map boxes (SNAPFIND_OBJECT_DETECTOR)"
DETECTED_POOLED = "objects, detector box pooled from the map (first)"
_ON = {n: " (SNAPFIND_OBJECT_CUT_OUT)" if n == CUT_OUTS else "" for n in SERVED_CUT}
CUT = f"objects, map's first box cut out, mixed with it pooled (1 query forward){_ON[1]}"
CUT_ALONE = "objects, map's first box cut out alone, as in the fifth pass (1 query forward)"
BEST_TWO = f"objects, map's best 2 boxes cut out, the clearest first (2 forwards){_ON[2]}"
EITHER = "objects, detector, else as SNAPFIND_OBJECT_CUT_OUT (both on)"
SERVED_FIRST = "first album as served (room probe, then the default's first object, or the photo)"
SERVED_FIRST_DETECTED = "first album as served with the detector (SNAPFIND_OBJECT_DETECTOR)"


def object_finders(
    service: SearchService, detector: Detector, hubness: np.ndarray | None
) -> dict[str, ObjectFinder]:
    """Each object variant's finder, all against one region hubness (None: the index's)."""
    make = partial(ObjectFinder, region_encoder_for(service.extractor), service.index, hubness)
    detected = make(detector=detector)
    return {
        POOLED: make(),
        DETECTED: detected,
        DETECTED_POOLED: detected,
        CUT: make(cut_outs=1),
        CUT_ALONE: make(cut_outs=1, cut_out_weight=1.0),
        BEST_TWO: make(cut_outs=2),
        EITHER: make(detector=detector, cut_outs=CUT_OUTS),
    }


def object_rankers(finders: dict[str, ObjectFinder], service: SearchService) -> dict[str, Ranker]:
    """The object variants' rankings; bench-only variants give their first object alone."""
    rankers = {name: objects(finder, service) for name, finder in finders.items()}
    rankers[DETECTED_POOLED] = detector_pooled(finders[DETECTED_POOLED], service)
    rankers[EITHER] = first_only(rankers[EITHER])
    rankers[SERVED_FIRST] = first_album_of(finders[CUT], service)
    rankers[SERVED_FIRST_DETECTED] = first_album_of(finders[EITHER], service)
    return rankers


def drawn_hubness(service: SearchService, draw: Draw) -> np.ndarray:
    """The region hubness `index build --objects` would compute with another pseudo-room draw."""
    index = service.index
    owners = index.store.product_of_vector[: index.pictures]
    pictures = CatalogPictures.from_files(owners, index.store.image_paths(), service.limits)
    rooms = pseudo_rooms(region_encoder_for(service.extractor), pictures, draw)
    return region_hubness([index.picture_vectors()], owners, rooms)


def parse_draws(text: str) -> list[Draw]:
    """SEED:ROOMS pairs, comma-separated ("1:150,2:600"), as draws."""
    return [Draw(*map(int, item.split(":"))) for item in text.split(",") if item]


def row_of(name: str, way: str) -> str:
    """A table row: the variant and the way its list is scored ("" for a single list); the
    index's draw and the others share it, so `--draws` lines up with the table."""
    return f"{name}: {way}" if way else name


def scores(ranking: list[str], truth: set[str]) -> tuple[float, float, float, float]:
    """hit@5, hit@10, P@5, reciprocal rank of the first product of the room (whole catalog)."""
    first = next((i for i, pid in enumerate(ranking, 1) if pid in truth), None)
    top5 = sum(pid in truth for pid in ranking[:5]) / 5
    if first is None:
        return 0.0, 0.0, top5, 0.0
    return float(first <= 5), float(first <= 10), top5, 1.0 / first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="a published index directory")
    parser.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea-rooms"))
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--runtime-dir", type=Path, default=Path("data/runtime"))
    parser.add_argument("--limit", type=int, help="only the first N rooms")
    parser.add_argument("--annotate", type=Path, help="draw the objects of 3 rooms here")
    parser.add_argument(
        "--draws",
        type=parse_draws,
        default=[],
        help="more pseudo-room draws for the object variants, as SEED:ROOMS,... (the index's "
        "own hubness is always the first): first objects and interleaved lists are scored on each",
    )
    args = parser.parse_args()

    settings = Settings(backbone=args.backbone, index_dir=args.index, runtime_dir=args.runtime_dir)
    service = load_service(settings)
    encoder = region_encoder_for(service.extractor)
    if service.index.region_hubness(encoder.side) is None:
        parser.error(f"{args.index} has no region hubness: build it with `index build --objects`")
    detector = Detector(settings.threads)
    finders = object_finders(service, detector, None)
    variants: dict[str, Ranker] = {
        "whole photo": whole_photo(service),
        "whole photo from the region map": whole_from_map(finders[POOLED], service),
        "grid 3x3 + whole": grid(service),
        **object_rankers(finders, service),
        f"{SERVED_FIRST} (ObjectSearch)": first_album(ObjectSearch(service.extractor), service),
    }
    albums = every_button(ObjectSearch(service.extractor), service)
    buttons: list[tuple[float, float, int]] = []  # per room: hit@5, hit@10, albums offered
    timed: dict[str, Callable[[bytes, int], object]] = {
        "whole photo": lambda data, k: service.search_bytes(data, Page(k)),
        "whole photo from the region map": variants["whole photo from the region map"],
        "grid 3x3 + whole": variants["grid 3x3 + whole"],
        **{name: object_step(finder, service) for name, finder in finders.items()},
        DETECTED_POOLED: variants[DETECTED_POOLED],
        SERVED_FIRST: variants[SERVED_FIRST],
        SERVED_FIRST_DETECTED: variants[SERVED_FIRST_DETECTED],
        f"{SERVED_FIRST} (ObjectSearch)": variants[f"{SERVED_FIRST} (ObjectSearch)"],
        "detector alone": lambda data, k: detector.detect(service.decode(data)),
        SERVED_BEFORE: served_before(finders[POOLED], service),
        SERVED_MAP: served(ObjectSearch(service.extractor, ObjectOptions(cut_outs=0)), service),
        SERVED_DETECTED: served(
            ObjectSearch(service.extractor, ObjectOptions(detect=True, cut_outs=0)), service
        ),
    }
    for n, line in SERVED_CUT.items():
        timed[line] = served(ObjectSearch(service.extractor, ObjectOptions(cut_outs=n)), service)
    for line in (SERVED_MAP, SERVED_DETECTED, *SERVED_CUT.values()):  # built before the clock
        search = timed[line]
        search(next(iter(args.rooms.glob("rooms/*.jpg"))).read_bytes(), PAGE)
    drawn: dict[str, dict[str, Ranker]] = {}  # the other draws' object variants
    for draw in args.draws:
        started = time.perf_counter()
        hubness = drawn_hubness(service, draw)
        drawn[f"{draw.seed}:{draw.rooms}"] = object_rankers(
            object_finders(service, detector, hubness), service
        )
        print(f"draw {draw}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    with (args.rooms / "rooms.csv").open(newline="", encoding="utf-8") as handle:
        rooms = list(csv.DictReader(handle))[: args.limit]
    everything = len(service.index)
    quality: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    by_draw: dict[tuple[str, str], list[tuple[float, ...]]] = defaultdict(list)
    timing: dict[str, list[float]] = {name: [] for name in timed}
    hubs: dict[str, Counter[str]] = defaultdict(Counter)
    for n, room in enumerate(rooms, 1):
        data = (args.rooms / room["room_image"]).read_bytes()
        truth = set(room["product_ids"].split())
        for name, call in timed.items():
            started = time.perf_counter()
            call(data, PAGE)
            timing[name].append(time.perf_counter() - started)
        for name, rank in variants.items():
            for way, ranking in rank(data, everything).items():
                row = row_of(name, way)
                quality[row].append(scores(ranking, truth))
                hubs[row].update(ranking[:5])
                if way in DRAWN_WAYS:
                    by_draw[row, "index"].append(quality[row][-1])
        offered = albums(data)
        buttons.append(
            (
                float(any(truth & set(ids[:5]) for ids in offered)),
                float(any(truth & set(ids[:10]) for ids in offered)),
                len(offered),
            )
        )
        for label, rankers in drawn.items():
            for name, rank in rankers.items():
                for way, ranking in rank(data, everything).items():
                    if way in DRAWN_WAYS:
                        by_draw[row_of(name, way), label].append(scores(ranking, truth))
        print(f"\r{n}/{len(rooms)} rooms", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    base = statistics.median(timing["whole photo"])
    print(f"{len(rooms)} rooms, {everything} products, {args.backbone}, region side {encoder.side}")
    print()
    print(
        "| variant | hit@5 | hit@10 | P@5 | MRR | ms/photo (median) | × whole | top hub in top-5 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    titles = {
        pid: p.title for p in service.index.store.get(list(range(everything))) for pid in [p.id]
    }
    for row in quality:
        h5, h10, p5, mrr = np.mean(quality[row], axis=0)
        ms = 1000 * statistics.median(timing[row.split(": ")[0]])
        hub, count = hubs[row].most_common(1)[0]
        print(
            f"| {row} | {h5:.3f} | {h10:.3f} | {p5:.3f} | {mrr:.3f} | {ms:.0f} | "
            f"{ms / (1000 * base):.2f} | {titles[hub]} {count}/{len(rooms)} |"
        )
    for line in (
        "detector alone",
        SERVED_BEFORE,
        SERVED_MAP,
        SERVED_DETECTED,
        *SERVED_CUT.values(),
    ):
        ms = 1000 * statistics.median(timing[line])
        print(f"{line}: {ms:.0f} ms median, {ms / (1000 * base):.2f} × whole")
    h5, h10, offered = np.mean(buttons, axis=0)
    print(
        f"every album the served reply offers (first album, each object's button, Whole photo; "
        f"{offered:.1f} a photo): some album's first page holds a room product in {h5:.3f} of "
        f"the rooms, its first two pages in {h10:.3f}"
    )
    if drawn:
        print_draws(by_draw, ["index", *drawn])
    if args.annotate:
        annotate(args, rooms[:3], finders[CUT], service)  # as served by default
    return 0


def print_draws(by_draw: dict[tuple[str, str], list[tuple[float, ...]]], labels: list[str]) -> None:
    """First object's and interleaved hit@5 per pseudo-room draw (seed:rooms), and the means
    over draws."""
    print()
    print("hit@5 by pseudo-room draw (seed:rooms), and means over the draws")
    print()
    print(f"| variant | {' | '.join(labels)} | mean hit@5 | mean hit@10 | mean MRR |")
    print("|---|" + "---|" * (len(labels) + 3))
    for name in dict.fromkeys(name for name, _ in by_draw):
        means = [np.mean(by_draw[name, label], axis=0) for label in labels]
        cells = " | ".join(f"{m[0]:.3f}" for m in means)
        h5, h10, _, mrr = np.mean(means, axis=0)
        print(f"| {name} | {cells} | {h5:.3f} | {h10:.3f} | {mrr:.3f} |")


def annotate(
    args: argparse.Namespace, rooms: list[dict], finder: ObjectFinder, service: SearchService
) -> None:
    """Boxes and labels drawn on a few rooms, into an ignored folder (IKEA photos: never commit)."""
    args.annotate.mkdir(parents=True, exist_ok=True)
    for room in rooms:
        data = (args.rooms / room["room_image"]).read_bytes()
        image = service.decode(data)
        found = finder.find(image, 5)
        out = args.annotate / Path(room["room_image"]).with_suffix(".png").name
        draw_objects(image, found).save(out)
        print(f"{out}:")
        for i, item in enumerate(found, 1):
            names = ", ".join(h.product.title for h in item.hits[:3])
            print(f"  {i} · {item.name} {item.score:.3f} {item.box.as_tuple()}: {names}")


if __name__ == "__main__":
    raise SystemExit(main())
