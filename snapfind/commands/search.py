"""`snapfind search PHOTO...`: the top-k products for each photo, the model loaded once."""

import argparse
import json
import sys
from pathlib import Path

from retrieval.bounded_read import read_image_file
from retrieval.errors import ConfigError, ImageError
from retrieval.index_store import CatalogIndex
from retrieval.loading import load_service
from retrieval.objects import MAX_OBJECTS
from retrieval.results import Page, QueryResult
from snapfind.commands import search_objects
from snapfind.commands.options import index_dir_option, path_argument, settings_from
from snapfind.contact_sheet import check_sheet, contact_sheet, one_line


def _as_json(photo: Path, result: QueryResult) -> str:
    return json.dumps(
        {
            "photo": str(photo),
            "no_match": result.no_match,
            "results": search_objects.hits_json(result.hits),
        }
    )


def _as_text(photo: Path, result: QueryResult) -> str:
    lines = [f"{photo}:"]
    if result.no_match:  # below the index's calibrated threshold, as the bot says too
        lines[0] += " no good match: nothing in the catalog looks much like it; the closest:"
    for rank, hit in enumerate(result.hits, start=1):
        p = hit.product
        extras = "  ".join(x for x in (p.url, str(p.image) if p.image else None) if x)
        lines.append(
            one_line(
                f"  {rank}. {hit.score:6.3f}  {p.title}  [{', '.join(p.categories)}]  {extras}"
            )
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, index_dir=args.index_dir, top_k=args.k)
    if args.sheet:  # a row per photo, or per object found in it (at most MAX_OBJECTS)
        rows = len(args.photos) * (MAX_OBJECTS if args.objects else 1)
        check_sheet(args.sheet, rows, 1 + settings.top_k)
    service = load_service(settings)
    if args.category is not None:  # `--category ""` too: it would match no product
        check_category(service.index, args.category)
    if args.objects:
        return search_objects.run(service, args, settings)
    failures = 0
    sheets: list[tuple[Path, QueryResult]] = []
    for photo in args.photos:
        try:
            data = read_image_file(photo, settings.max_image_bytes)  # bounded, regular files only
            result = service.search_bytes(data, Page(settings.top_k, args.category))
        except ImageError as error:
            print(f"{photo}: {error.user_message}", file=sys.stderr)
            failures += 1
            continue
        print(_as_json(photo, result) if args.json else _as_text(photo, result), flush=True)
        sheets.append((photo, result))
    if args.sheet and sheets:
        contact_sheet(sheets, service.limits).save(args.sheet)
        print(f"contact sheet: {args.sheet}", file=sys.stderr)
    return 1 if failures else 0


def check_category(index: CatalogIndex, category: str) -> None:
    """A `--category` that names no category is a mistake to report, not an empty answer."""
    known = index.categories()
    if category.casefold() not in {c.casefold() for c in known}:
        listed = ", ".join(name[:40] for name in known[:30])
        if len(known) > 30:
            listed += f", … ({len(known)} in all)"
        raise ConfigError(f"no category {category!r} in this index; its categories: {listed}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="find the products most like some photos")
    parser.add_argument("photos", nargs="+", type=path_argument, metavar="PHOTO")
    index_dir_option(parser)
    parser.add_argument("-k", "--k", type=int, help="products per photo (SNAPFIND_TOP_K)")
    parser.add_argument("--category", help="only products of this category")
    parser.add_argument("--json", action="store_true", help="one JSON object per photo per line")
    parser.add_argument("--sheet", type=path_argument, help="write a contact sheet PNG")
    parser.add_argument(
        "--objects", action="store_true", help="find each piece of furniture and search it"
    )
    parser.set_defaults(run=run)
