"""Outside photos against the whole catalog: the gap between shop photos and shoppers' photos.

`snapfind evaluate --queries photos.csv` reads a `photo, category` CSV (photo paths relative to
the CSV, inside its folder) and searches every photo through the product's own call,
`SearchService.search_bytes` (bounded read, decode, embed, the manifest's second stage, one slot
per picture). Scored: P@5 and top-1 by category, overall and per class, the macro F1 of the
top-1 label, and how often "no good match" fires. A bad row or photo is skipped with one line
saying why; it never stops the study. Photos of a category the catalog does not have are left
out of every figure, and one line names those categories (see `score_outside`).
"""

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.evaluation import metrics
from retrieval.bounded_read import read_image_file
from retrieval.errors import ConfigError, ImageError
from retrieval.results import Page
from retrieval.search import SearchService

MAX_CSV_BYTES = 4 * 2**20  # a list of photos, not the photos: 4 MiB is ~100,000 rows
MAX_ROWS = 20_000
PAGE = 5  # a reply's first page: what P@5 scores


@dataclass(frozen=True)
class OutsidePhoto:
    name: str  # as the list gives it, for messages
    path: Path
    category: str


@dataclass(frozen=True)
class QuerySet:
    """The usable rows of a query CSV and one line per row that is not."""

    source: Path
    photos: tuple[OutsidePhoto, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True)
class OutsideScores:
    """One backbone's scores on the outside photos that could be searched."""

    photos: int
    p5: float
    top1: float
    f1: float
    no_match: float  # share of photos the index calls "no good match"
    per_class: dict[str, dict[str, float]]  # class -> n, p5, top1
    problems: tuple[str, ...]  # photos that could not be searched, one line each


def read_query_csv(path: Path) -> QuerySet:
    """The `photo, category` rows of `path`; a file that is not such a CSV is a ConfigError."""
    path = Path(path)
    try:
        text = read_image_file(path, MAX_CSV_BYTES).decode("utf-8-sig")
    except ImageError as error:
        raise ConfigError(f"cannot read the query list: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"query list {path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {(name or "").strip().lower(): name for name in reader.fieldnames or ()}
    if "photo" not in columns or "category" not in columns:
        raise ConfigError(
            f"query list {path} needs the columns photo and category "
            f"(it has: {', '.join(c for c in columns if c) or 'none'})"
        )
    folder = path.parent.resolve()
    photos, problems = [], []
    rejected: list[tuple[str, str]] = []  # (reason, first example) per bad row, for the error
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            raise ConfigError(f"query list {path} has more than {MAX_ROWS} rows")
        photo = (row.get(columns["photo"]) or "").strip()
        category = (row.get(columns["category"]) or "").strip()
        where = f"{path.name} line {line}"
        if not photo or not category:
            problems.append(f"{where}: {'no photo' if not photo else 'no category'}, skipped")
            rejected.append(("photo" if not photo else "category", f"line {line}"))
            continue
        target = (folder / photo).resolve()
        if Path(photo).is_absolute() or not target.is_relative_to(folder):
            problems.append(f"{where}: {photo} is outside the list's folder, skipped")
            rejected.append(("outside", photo))
            continue
        photos.append(OutsidePhoto(photo, target, category))
    if not photos:
        raise ConfigError(f"query list {path} has no usable row{_why_none(rejected)}")
    return QuerySet(path, tuple(photos), tuple(problems))


REJECTED = {  # why a row was skipped -> (one row, several rows)
    "photo": ("row names no photo", "rows name no photo"),
    "category": ("row gives no category", "rows give no category"),
    "outside": (
        "row names a photo outside its folder",
        "rows name a photo outside its folder",
    ),
}


def _why_none(rejected: list[tuple[str, str]]) -> str:
    """Why a list with no usable row has none: the first rejected row's reason, how many rows
    share it and the first of them, so the fix is plain without the skipped lines."""
    if not rejected:
        return " (no rows under its header)"
    reason, first = rejected[0]
    count = sum(1 for r, _ in rejected if r == reason)
    one, several = REJECTED[reason]
    text = f": {count} {one if count == 1 else several} (first: {first})"
    if reason == "outside":
        text += "; photo paths are relative to the list, in its folder or below"
    if others := len(rejected) - count:
        text += f"; {others} more {'row' if others == 1 else 'rows'} skipped for other reasons"
    return text


def score_outside(service: SearchService, queries: QuerySet) -> OutsideScores:
    """Search every photo with the product's call and score its first page by category.

    A photo whose category the catalog does not have is neither searched nor scored: no product
    could ever count as right for it, so it would only pull P@5, top-1 and F1 down for a reason
    that is the list's, not the model's. One line of `problems` (shown on the console and in the
    report's skipped list) names those categories and how many photos each holds.
    """
    known = set(service.describe().categories)
    unknown = Counter(p.category for p in queries.photos if p.category not in known)
    left_out = [_unknown_line(unknown, known)] if unknown else []
    searched = [p for p in queries.photos if p.category in known]
    if not searched:
        raise ConfigError(f"no photo of {queries.source} can be scored: {left_out[0]}")
    truth: list[str] = []
    pages: list[list[str]] = []
    flagged = 0
    problems: list[str] = []
    for photo in searched:
        try:
            data = read_image_file(photo.path, service.limits.max_bytes)
            result = service.search_bytes(data, Page(PAGE))
        except ImageError as error:  # the detail, not the shopper's wording: this is for operators
            problems.append(f"{photo.name}: {error}, skipped")
            continue
        truth.append(photo.category)
        pages.append([h.product.categories[0] if h.product.categories else "" for h in result.hits])
        flagged += result.no_match
    if not truth:
        raise ConfigError(f"no photo of {queries.source} could be searched: {problems[0]}")
    return _scores(truth, pages, flagged, (*left_out, *problems))


def _unknown_line(unknown: Counter[str], known: set[str]) -> str:
    """The categories of the list that the catalog lacks, with their photo counts (and the
    catalog's spelling where only the case differs, since categories are compared exactly)."""
    spelled = {c.casefold(): c for c in known}
    named = []
    for category, count in sorted(unknown.items(), key=lambda item: (-item[1], item[0])):
        other = spelled.get(category.casefold())
        hint = f", the catalog spells it {other!r}" if other else ""
        named.append(f"{category!r} ({count} {'photo' if count == 1 else 'photos'}{hint})")
    total = sum(unknown.values())
    return (
        f"{total} {'photo' if total == 1 else 'photos'} with a category the catalog does not have, "
        f"left out of the scores (no product could match): {', '.join(named)}"
    )


def _scores(
    truth: Sequence[str], pages: Sequence[Sequence[str]], flagged: int, problems: tuple[str, ...]
) -> OutsideScores:
    relevant = metrics.strict_relevance(truth, pages)  # (Q, ranks) bool
    per_class = {}
    for label in sorted(set(truth)):
        members = [i for i, t in enumerate(truth) if t == label]
        per_class[label] = {
            "n": float(len(members)),
            "p5": metrics.precision_at(relevant[members], PAGE),
            "top1": metrics.hit_rate(relevant[members], 1),
        }
    return OutsideScores(
        photos=len(truth),
        p5=metrics.precision_at(relevant, PAGE),
        top1=metrics.hit_rate(relevant, 1),
        f1=metrics.macro_f1(truth, [page[0] if page else "" for page in pages]),
        no_match=flagged / len(truth),
        per_class=per_class,
        problems=problems,
    )
