"""Outside photos against the whole catalog: the gap between shop photos and shoppers' photos.

`snapfind evaluate --queries photos.csv` reads a `photo, category` CSV (photo paths relative to
the CSV, inside its folder) and searches every photo through the product's own call,
`SearchService.search_bytes` (bounded read, decode, embed, the manifest's second stage, one slot
per picture). Scored: P@5 and top-1 by category, overall and per class, the macro F1 of the
top-1 label, and how often "no good match" fires. A bad row or photo is skipped with one line
saying why; it never stops the study.
"""

import csv
import io
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
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            raise ConfigError(f"query list {path} has more than {MAX_ROWS} rows")
        photo = (row.get(columns["photo"]) or "").strip()
        category = (row.get(columns["category"]) or "").strip()
        where = f"{path.name} line {line}"
        if not photo or not category:
            problems.append(f"{where}: {'no photo' if not photo else 'no category'}, skipped")
            continue
        target = (folder / photo).resolve()
        if Path(photo).is_absolute() or not target.is_relative_to(folder):
            problems.append(f"{where}: {photo} is outside the list's folder, skipped")
            continue
        photos.append(OutsidePhoto(photo, target, category))
    if not photos:
        raise ConfigError(f"query list {path} has no usable row")
    return QuerySet(path, tuple(photos), tuple(problems))


def score_outside(service: SearchService, queries: QuerySet) -> OutsideScores:
    """Search every photo with the product's call and score its first page by category."""
    truth: list[str] = []
    pages: list[list[str]] = []
    flagged = 0
    problems: list[str] = []
    for photo in queries.photos:
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
    return _scores(truth, pages, flagged, tuple(problems))


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
