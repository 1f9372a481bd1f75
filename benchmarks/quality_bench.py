"""Shop photos vs shoppers' photos: retrieval quality of the product's own search, per variant.

One run, per backbone, against the published IKEA index (built by `snapfind index build`):

- *wild*: the 246 in-the-wild photos of ../shared/data/wild as queries; P@5 by category of the
  returned products, top-1, per class and overall, macro F1 of the top-1 label;
- *LOO*: IKEA leave-one-out: every product (but the catch-all `other`) searched with its own
  stored vector, itself and the products sharing its picture excluded; P@1/P@5 by category;
  *issue*: the leave-one-out the issue's goal was set on (docs/backbones.md): `other` and
  `textile` neither query nor count, only the product itself is excluded ("held": on the
  pictures `snapfind tune` holds out);
- *aug*: exact-product recall@1 of shopper-like copies (crop, tilt, colour, JPEG) of catalog
  photos: the own product (or one sharing its picture) must come first;
- *no match*: how often the index's "no good match" flag fires on wild furniture and on
  non-furniture photos (scikit-image's samples plus synthetic pictures);
- ms per query through `SearchService.search_bytes` (decode → extract → search), per variant;
- *served*: the album the bot sends first for each wild photo (`search_objects`, objects on):
  the first object's for a photo the index's room probe calls a room, else the whole photo's.

Two catalogs: `ikea`, all 2,042 products (lamps, rugs, ... and 1,086 `other` among them), and
`ikea5`, the 317 products of the wild photos' five classes (the issue's figures and goals are on
this one). Build both with the product's command (the five-class CSV is catalog.csv's rows of
those classes with absolute image paths):

    snapfind index build --catalog ../shared/data/ikea/catalog.csv --out ROOT/ikea-lite0 \
        --backbone efficientnet-lite0
    snapfind index build --catalog ikea5.csv --out ROOT/ikea5-lite0 --backbone efficientnet-lite0

Queries go through the product's calls: the service decodes each photo and the network embeds it
once (its vector is cached as .npy under --cache, so re-runs take seconds); the index root's
tuned head, if `snapfind tune` made one, is applied to it as the extractor applies it; every
variant then searches with `CatalogIndex.search(vector, page, rerank=...)`, the call the bot's
buttons make. Several --index-root (e.g. without and with a head) are scored on the same query
vectors in one run, and their shipped searches are timed interleaved, photo by photo.

    .venv/bin/python benchmarks/quality_bench.py --backbones efficientnet-lite0,efficientnet-lite2
    .venv/bin/python benchmarks/quality_bench.py --index-root PLAIN --index-root TUNED
"""

import argparse
import csv
import io
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from index.evaluation.augment import augment_for_index, augment_for_query, variant_rng
from index.evaluation.metrics import macro_f1
from index.tune import held_out
from retrieval.extractor import Extractor
from retrieval.head import load_head
from retrieval.index_store import CatalogIndex, Hit, open_index
from retrieval.model_input import DECODING
from retrieval.rerank import RerankParams
from retrieval.results import Page
from retrieval.search import SearchService
from retrieval.tf_runtime import configure_tensorflow

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WILD_CLASSES = ("bed", "sofa", "chair", "table", "wardrobe")
CATALOGS = ("ikea5", "ikea")  # index folders <name>-<backbone short name> under --index-root
AUGMENTS = {"mild": augment_for_index, "harsh": augment_for_query}
CATCH_ALL = "other"
CATCH_ALL_BINS = {"other", "textile"}  # the issue's leave-one-out: never a query, never right
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "eagle", "grass", "gravel", "horse", "hubble_deep_field",
    "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
    "text",
)  # fmt: skip
VARIANTS: dict[str, RerankParams] = {
    "baseline": RerankParams(),
    "votes d10 w0.1": RerankParams(depth=10, category_weight=0.1),
    "votes d10 w0.2": RerankParams(depth=10, category_weight=0.2),
    "votes d10 w0.3": RerankParams(depth=10, category_weight=0.3),
    "votes d20 w0.1": RerankParams(depth=20, category_weight=0.1),
    "votes d20 w0.2": RerankParams(depth=20, category_weight=0.2),
    "votes d20 w0.3": RerankParams(depth=20, category_weight=0.3),
    "votes d20 w0.5": RerankParams(depth=20, category_weight=0.5),
    "votes d30 w0.2": RerankParams(depth=30, category_weight=0.2),
    "votes d30 w0.3": RerankParams(depth=30, category_weight=0.3),
    "nearest's kind first d10": RerankParams(depth=10, category_weight=1.0, voters=1),
    "nearest's kind first d20": RerankParams(depth=20, category_weight=1.0, voters=1),
    "nearest's kind first d30": RerankParams(depth=30, category_weight=1.0, voters=1),
    "nearest's kind first d50": RerankParams(depth=50, category_weight=1.0, voters=1),
    "nearest's kind first d100": RerankParams(depth=100, category_weight=1.0, voters=1),
    "nearest's kind first d30 bins out": RerankParams(
        depth=30, category_weight=1.0, voters=1, kinds_only=1
    ),
    "3 nearest vote d20 w0.2": RerankParams(depth=20, category_weight=0.2, voters=3),
    "5 nearest vote d20 w0.2": RerankParams(depth=20, category_weight=0.2, voters=5),
    "5 nearest vote d20 w1": RerankParams(depth=20, category_weight=1.0, voters=5),
    "aQE m3 a3": RerankParams(qe_top=3, qe_alpha=3.0),
    "aQE m5 a3": RerankParams(qe_top=5, qe_alpha=3.0),
    "aQE m3 + votes d20 w0.2": RerankParams(depth=20, category_weight=0.2, qe_top=3),
}


@dataclass
class Queries:
    """Query vectors (Q, D) with what each should find."""

    names: list[str]
    vectors: np.ndarray
    labels: list[str]  # category (wild) or product id (aug); "" for non-furniture


def cached_vectors(
    service: SearchService, cache: Path, tag: str, items: list[tuple[str, object, str]]
) -> Queries:
    """Vectors of (name, bytes-or-None-if-cached, label) items, embedded by the product once.

    The network's vectors are cached (`search_bytes` through the extractor without its head),
    keyed by the extractor and the decoding, and the tuned head is applied to them as the
    extractor does (`apply_head`), so indexes with different heads share one query set. A change
    of how photos are decoded that keeps DECODING needs a fresh --cache (vectors cached before
    issue 11's decoding differ by up to 0.01 in cosine on the wild photos)."""
    extractor = service.extractor
    plain = extractor.without_head()
    key = f"{plain.fingerprint.key()}-{DECODING}"
    vectors_file, names_file = cache / f"{key}-{tag}.npy", cache / f"{key}-{tag}.json"
    names = [name for name, _, _ in items]
    if vectors_file.is_file() and json.loads(names_file.read_text()) == names:
        vectors = np.load(vectors_file)
    else:
        vectors = np.stack([plain.embed_one(service.decode(data())) for _, data, _ in items])
        cache.mkdir(parents=True, exist_ok=True)
        np.save(vectors_file, vectors)
        names_file.write_text(json.dumps(names))
    return Queries(names, extractor.apply_head(vectors), [label for _, _, label in items])


def wild_items(csv_path: Path) -> list[tuple[str, object, str]]:
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        (r["photo"], (lambda p=csv_path.parent / r["photo"]: p.read_bytes()), r["category"])
        for r in rows
    ]


def jpeg(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def augmented_items(
    index: CatalogIndex, count: int, seed: int, kind: str
) -> list[tuple[str, object, str]]:
    """Copies of `count` catalog products' photos (seeded), JPEG at quality 60-85.

    mild: flip, +-15 degrees, 80-100 % zoom, brightness; harsh: 50-85 % crop anywhere,
    +-20 degrees, brightness/contrast/colour jitter (the evaluation's two augmentations).
    """
    augment = AUGMENTS[kind]
    rows = np.random.default_rng(seed).choice(len(index), size=count, replace=False)
    items = []
    for product in index.store.get(sorted(int(r) for r in rows)):

        def data(product=product) -> bytes:
            pixels = np.asarray(Image.open(product.image).convert("RGB"))
            rng = variant_rng(seed, product.id, kind)
            return jpeg(augment(pixels, rng), int(rng.integers(60, 86)))

        items.append((product.id, data, product.id))
    return items


def non_furniture_items(seed: int) -> list[tuple[str, object, str]]:
    """scikit-image's sample photos (those shipped offline) and seeded synthetic pictures."""
    import skimage.data

    items = []
    for name in SKIMAGE_PHOTOS:
        try:
            pixels = np.asarray(getattr(skimage.data, name)())
        except Exception:  # a sample that needs a download is skipped
            continue
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        pixels = pixels[..., :3].astype(np.uint8)
        items.append((f"skimage:{name}", lambda p=pixels: jpeg(p, 90), ""))
    rng = np.random.default_rng(seed)
    for n in range(12):
        kind = ("noise", "gradient", "checker", "solid")[n % 4]
        h, w = 320, 320
        if kind == "noise":
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif kind == "gradient":
            ramp = np.linspace(0, 1, w)[None, :, None] * rng.integers(0, 256, 3)
            pixels = np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8)
        elif kind == "checker":
            cells = (np.indices((h, w)) // int(rng.integers(8, 64))).sum(axis=0) % 2
            pixels = (cells[..., None] * rng.integers(0, 256, 3)).astype(np.uint8)
        else:
            pixels = np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        items.append((f"synthetic:{kind}{n}", lambda p=pixels: jpeg(p, 90), ""))
    return items


def page_categories(hits: list[Hit]) -> list[str]:
    return [h.product.categories[0] if h.product.categories else "" for h in hits]


def wild_scores(index: CatalogIndex, wild: Queries, stage: RerankParams) -> dict[str, float]:
    """P@5 and top-1 overall and per class, macro F1 of the top-1 label, duplicate slots merged."""
    p5: dict[str, list[float]] = {c: [] for c in WILD_CLASSES}
    top1: dict[str, list[float]] = {c: [] for c in WILD_CLASSES}
    predicted, merged_pages = [], 0
    for vector, label in zip(wild.vectors, wild.labels, strict=True):
        hits = index.search(vector, rerank=stage)
        cats = page_categories(hits)
        p5[label].append(sum(c == label for c in cats) / 5)
        top1[label].append(float(cats[0] == label))
        predicted.append(cats[0])
        merged_pages += any(h.also_as for h in hits)
    out = {"P@5": mean_of(p5), "top1": mean_of(top1), "F1": macro_f1(wild.labels, predicted)}
    out |= {f"P@5 {c}": float(np.mean(p5[c])) for c in WILD_CLASSES}
    out |= {f"top1 {c}": float(np.mean(top1[c])) for c in WILD_CLASSES}
    out["merged"] = merged_pages
    return out


def mean_of(per_class: dict[str, list[float]]) -> float:
    return float(np.mean([v for values in per_class.values() for v in values]))


def loo_scores(index: CatalogIndex, stage: RerankParams) -> dict[str, float]:
    """IKEA leave-one-out by category: each product's own vector, its picture's products out;
    also over the products whose picture `snapfind tune` holds out ("held"), the only honest
    LOO figure for a tuned head (it saw the others' pictures)."""
    products = index.store.get(list(range(len(index))))
    by_picture: dict[str | None, list[str]] = {}
    for row, product in enumerate(products):
        by_picture.setdefault(index.store.picture_of(row), []).append(product.id)
    sizes = Counter(p.categories[0] for p in products if p.categories)
    p1, p5, held = [], [], []
    for row, product in enumerate(products):
        label = product.categories[0] if product.categories else CATCH_ALL
        if label == CATCH_ALL or sizes[label] < 5:
            continue
        twins = tuple(by_picture[index.store.picture_of(row)])
        hits = index.search(index.vector_of(product.id), Page(exclude=twins), rerank=stage)
        cats = page_categories(hits)
        p1.append(float(cats[0] == label))
        p5.append(sum(c == label for c in cats) / 5)
        held.append(held_out(index.store.picture_of(row) or ""))
    kept = np.array(held)
    return {
        "LOO P@1": float(np.mean(p1)),
        "LOO P@5": float(np.mean(p5)),
        "LOO n": len(p1),
        "held P@1": float(np.mean(np.array(p1)[kept])),
        "held P@5": float(np.mean(np.array(p5)[kept])),
        "held n": int(kept.sum()),
    }


def issue_loo_scores(index: CatalogIndex, stage: RerankParams) -> dict[str, float]:
    """IKEA leave-one-out as the issue measured it (tests/test_ikea_quality.py, docs/backbones.md):
    every product with a category other than the catch-all bins, itself excluded (products
    sharing its picture stay), a hit right when it shares one of the query's categories."""
    products = index.store.get(list(range(len(index))))
    p1, p5, held = [], [], []
    for row, product in enumerate(products):
        wanted = set(product.categories) - CATCH_ALL_BINS
        if not wanted:
            continue
        hits = index.search(index.vector_of(product.id), Page(exclude=(product.id,)), stage)
        right = [bool(wanted & set(h.product.categories)) for h in hits]
        p1.append(float(right[0]))
        p5.append(sum(right) / 5)
        held.append(held_out(index.store.picture_of(row) or ""))
    return {
        "issue P@1": float(np.mean(p1)),
        "issue P@5": float(np.mean(p5)),
        "issue held P@5": float(np.mean(np.array(p5)[np.array(held)])),
    }


def exact_recall(index: CatalogIndex, aug: Queries, stage: RerankParams) -> float:
    found = 0
    for vector, product_id in zip(aug.vectors, aug.labels, strict=True):
        top = index.search(vector, Page(1), rerank=stage)[0]
        found += product_id in {top.product.id, *(p.id for p in top.also_as)}
    return found / len(aug.labels)


def no_match_rates(index: CatalogIndex, queries: Queries) -> tuple[float, list[float]]:
    """Share of queries flagged "no good match", and their best similarities."""
    flagged, tops = 0, []
    for vector in queries.vectors:
        hits = index.search(vector)
        flagged += index.no_match(hits)
        tops.append(max(h.score for h in hits))
    return flagged / len(queries.vectors), tops


def query_ms(
    photos: list[bytes], timed: dict[str, tuple[SearchService, RerankParams]]
) -> dict[str, float]:
    """Median ms per query through search_bytes, variants interleaved photo by photo."""
    spent: dict[str, list[float]] = {name: [] for name in timed}
    for data in photos:
        for name, (service, stage) in timed.items():
            service.index.rerank = stage
            started = time.perf_counter()
            service.search_bytes(data)
            spent[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in spent.items()}


def percentiles(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in np.percentile(values, [5, 25, 50, 75, 95]))


def run_backbone(backbone: str, args: argparse.Namespace) -> None:
    """Every index root's tables on one set of query vectors, then the query cost of each
    root's shipped search (its head, its manifest's stage) against the plain one, interleaved."""
    short = backbone.removeprefix("efficientnet-")
    plain = Extractor(backbone, "imagenet")
    plain.warmup()
    wild_csv = SHARED / "wild" / "photos.csv"
    timed: dict[str, tuple[SearchService, RerankParams]] = {}
    for number, root in enumerate(args.index_root):
        head = load_head(root / f"ikea-{short}")  # `snapfind tune`'s, if it made one
        extractor = plain if head is None else Extractor(backbone, "imagenet", head=head)
        full = open_index(root / f"ikea-{short}", extractor.fingerprint)
        service = SearchService(extractor, full)
        started = time.perf_counter()
        wild = cached_vectors(service, args.cache, "wild", wild_items(wild_csv))
        augs = {
            kind: cached_vectors(
                service,
                args.cache,
                f"aug-{kind}{args.aug}",
                augmented_items(full, args.aug, 7, kind),
            )
            for kind in AUGMENTS
        }
        other = cached_vectors(service, args.cache, "nonfurniture", non_furniture_items(11))
        print(
            f"\n## {backbone}, {root}: query vectors ready in {time.perf_counter() - started:.1f} s"
        )
        print(f"tuned head: {extractor.fingerprint.head or 'none'}")
        for catalog in CATALOGS:
            index = open_index(root / f"{catalog}-{short}", extractor.fingerprint)
            print(f"\n### {backbone} against {catalog} ({len(index)} products, {index.release})")
            print(f"manifest rerank: {index.rerank}, no-match below {index.no_match_below}")
            score_variants(index, wild, augs, args.only)
            report_no_match(index, wild, other)
            report_served(SearchService(extractor, index), wild_csv)
        if number == 0:
            timed["baseline"] = (SearchService(plain, full), RerankParams())
        timed[f"{root.name} manifest"] = (service, full.rerank)
    photos = [item[1]() for item in wild_items(wild_csv)[:: 246 // args.timed]]
    ms = query_ms(photos, timed)
    first = ms["baseline"]
    print(
        f"\nms/query (median of {len(photos)}, search_bytes, ikea, interleaved): "
        + ", ".join(f"{name} {value:.1f} (x{value / first:.3f})" for name, value in ms.items())
    )


def score_variants(
    index: CatalogIndex, wild: Queries, augs: dict[str, Queries], only: str | None
) -> None:
    """One table row per second-stage variant."""
    stages = dict(VARIANTS) | {"manifest": index.rerank}
    if only:
        stages = {name: stages[name] for name in only.split(",")}
    columns = ["P@5", "top1", "F1"] + [f"P@5 {c}" for c in WILD_CLASSES]
    columns += [f"top1 {c}" for c in WILD_CLASSES]
    columns += ["LOO P@1", "LOO P@5", "held P@1", "held P@5"]
    columns += ["issue P@1", "issue P@5", "issue held P@5"]
    columns += [f"R@1 {kind}" for kind in AUGMENTS] + ["merged"]
    print("| variant | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    present = {kind: in_index(index, aug) for kind, aug in augs.items()}
    for name, stage in stages.items():
        row = wild_scores(index, wild, stage) | loo_scores(index, stage)
        row |= issue_loo_scores(index, stage)
        for kind, aug in present.items():
            row[f"R@1 {kind}"] = exact_recall(index, aug, stage)
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
    loo = loo_scores(index, RerankParams())
    aug_n = len(next(iter(present.values())).names)
    print(
        f"(wild {len(wild.names)} photos, LOO {loo['LOO n']} products, {loo['held n']} of them "
        f"held out of tuning, {aug_n} augmented copies each)"
    )


def in_index(index: CatalogIndex, aug: Queries) -> Queries:
    keep = [i for i, pid in enumerate(aug.labels) if index.store.row_of(pid) is not None]
    return Queries([aug.names[i] for i in keep], aug.vectors[keep], [aug.labels[i] for i in keep])


def report_served(service: SearchService, wild_csv: Path) -> None:
    """The album the bot sends first for each wild photo, through `search_objects` as the bot
    calls it (objects on, its default): the first object's where the photo shows a room with
    two objects or more, else the whole photo's (`ObjectsResult.first`). The tables above
    score the whole photo only."""
    p5: dict[str, list[float]] = {c: [] for c in WILD_CLASSES}
    boxed = 0
    for _, data, label in wild_items(wild_csv):
        raw = data()
        found = service.search_objects(service.decode(raw), 5, raw)
        boxed += bool(found.shown)  # the photo with numbered boxes
        p5[label].append(sum(c == label for c in page_categories(found.first.hits)) / 5)
    by_class = " / ".join(f"{np.mean(p5[c]):.3f}" for c in WILD_CLASSES)
    print(
        f"first album as served (search_objects): wild P@5 {mean_of(p5):.3f}, "
        f"{' / '.join(WILD_CLASSES)} {by_class}; boxes for {boxed} of {sum(map(len, p5.values()))}"
    )


def report_no_match(index: CatalogIndex, wild: Queries, other: Queries) -> None:
    wild_rate, wild_tops = no_match_rates(index, wild)
    other_rate, other_tops = no_match_rates(index, other)
    print(
        f"no match fires: wild furniture {wild_rate:.3f} ({len(wild_tops)} photos), "
        f"non-furniture {other_rate:.3f} ({len(other_tops)} photos)"
    )
    print(f"best similarity p5/p25/p50/p75/p95: wild {percentiles(wild_tops)}")
    print(f"                                   non-furniture {percentiles(other_tops)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="efficientnet-lite0")
    parser.add_argument(
        "--index-root",
        type=Path,
        action="append",
        help="holds ikea-<lite0|lite2> and ikea5-<lite0|lite2> index folders (repeat: one table "
        "each, on the same query vectors; default /work/cache/quality13/indexes)",
    )
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/quality-cache"))
    parser.add_argument("--aug", type=int, default=300, help="augmented catalog copies")
    parser.add_argument("--timed", type=int, default=40, help="photos timed per variant")
    parser.add_argument("--only", help="comma-separated variant names")
    args = parser.parse_args(argv)
    args.index_root = args.index_root or [Path("/work/cache/quality13/indexes")]
    configure_tensorflow()
    started = time.perf_counter()
    for backbone in args.backbones.split(","):
        run_backbone(backbone.strip(), args)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
