"""`snapfind search --objects`: each piece of furniture in a photo, boxed, labelled, searched.

Through the query API's `search_objects`, the call the bot makes too, on the pixels the bot
searches (`SearchService.decode`): the boxes, labels and products are the bot's; the boxes are
then given in the photo's own pixels.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from retrieval.bounded_read import read_image_file
from retrieval.decode import decode_image
from retrieval.errors import ImageError
from retrieval.results import FoundObject, Hit, ObjectsResult, Page
from retrieval.search import SearchService
from retrieval.settings import Settings
from snapfind.contact_sheet import Row, object_rows, one_line, query_row, sheet


def hits_json(hits: list[Hit]) -> list[dict[str, object]]:
    """Ranked hits as JSON-ready dicts (shared with the plain `snapfind search --json`)."""
    return [
        {
            "rank": rank,
            "id": hit.product.id,
            "title": hit.product.title,
            "categories": list(hit.product.categories),
            "score": round(hit.score, 4),
            "image": str(hit.product.image) if hit.product.image else None,
            "url": hit.product.url,
        }
        for rank, hit in enumerate(hits, start=1)
    ]


def _as_json(photo: Path, whole: list[Hit], objects: list[FoundObject]) -> str:
    return json.dumps(
        {
            "photo": str(photo),
            "results": hits_json(whole),
            "objects": [
                {
                    "box": list(found.box),
                    "label": found.label,
                    "score": round(found.score, 4),
                    "results": hits_json(found.result.hits),
                }
                for found in objects
            ],
        }
    )


def _as_text(photo: Path, whole: list[Hit], objects: list[FoundObject]) -> str:
    found = f"{len(objects)} objects" if objects else "no objects to tell apart (whole photo)"
    lines = [f"{photo}: {found}"]
    groups = [
        (f"{n} · {o.label}  score {o.score:.3f}  box {o.box}", o.result.hits)
        for n, o in enumerate(objects, start=1)
    ] or [("whole photo", whole)]
    for title, hits in groups:
        lines.append(f"  {title}")
        for rank, hit in enumerate(hits, start=1):
            categories = ", ".join(hit.product.categories)
            lines.append(
                one_line(f"    {rank}. {hit.score:6.3f}  {hit.product.title}  [{categories}]")
            )
    return "\n".join(lines)


def _decode(service: SearchService, photo: Path) -> tuple[bytes, np.ndarray, np.ndarray] | None:
    """The photo's bytes, the photo as the bot decodes it (what is searched) and at full size
    (what the boxes are given in and the sheet shows), or None after saying on stderr why not.

    Searched at full size, 52 of the 60 IKEA rooms got objects of other labels or first
    products than the bot's: a JPEG the bot draft-decodes reaches the region pass through other
    pixels (docs/objects.md, twenty-second pass)."""
    try:
        data = read_image_file(photo, service.limits.max_bytes)  # bounded, regular files only
        return data, service.decode(data), decode_image(data, limits=service.limits)
    except ImageError as error:
        print(f"{photo}: {error.user_message}", file=sys.stderr)
        return None


def _in_photo(
    objects: list[FoundObject], searched: np.ndarray, photo: np.ndarray
) -> list[FoundObject]:
    """`objects` found in `searched` with their boxes in `photo`'s pixels (the same picture,
    decoded at another size)."""
    (height, width), (full_height, full_width) = searched.shape[:2], photo.shape[:2]
    across, down = full_width / width, full_height / height

    def scaled(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        left, top, right, bottom = box
        return round(left * across), round(top * down), round(right * across), round(bottom * down)

    return [replace(found, box=scaled(found.box)) for found in objects]


def run(service: SearchService, args: argparse.Namespace, settings: Settings) -> int:
    """Find and search the objects of each photo; the model and index are loaded once."""
    k = settings.top_k
    failures = 0
    drawn: list[Row] = []  # the sheet's rows: one per object, or the whole photo's
    for photo in args.photos:
        decoded = _decode(service, photo)
        if decoded is None:
            failures += 1
            continue
        data, searched, image = decoded
        found = service.search_objects(searched, k, data)  # as the bot asks
        whole, objects = _only(service, found, Page(k, args.category))
        objects = _in_photo(objects, searched, image)
        print(_as_json(photo, whole, objects) if args.json else _as_text(photo, whole, objects))
        if args.sheet:  # a photo without objects (a product photo) as plain search draws it
            drawn += (
                object_rows(photo, image, objects)
                if objects
                else [query_row(photo, whole, service.limits)]
            )
    if args.sheet and drawn:
        sheet(drawn, service.limits).save(args.sheet)
        print(f"contact sheet: {args.sheet}", file=sys.stderr)
    return 1 if failures else 0


def _only(
    service: SearchService, found: ObjectsResult, page: Page
) -> tuple[list[Hit], list[FoundObject]]:
    """The whole photo's and each object's products, of `page.category` if it names one.

    Filtered from the vectors already computed (no second forward pass), each object's through
    `search_object_vector` so it is ranked as its unfiltered list was; no category: as found.
    """
    if page.category is None:
        return found.whole.hits, found.objects
    whole = service.search_vector(found.whole.vector, page)
    objects = []
    for found_object in found.objects:
        result = found_object.result
        hits = service.search_object_vector(result.vector, page, found_object.kind)
        objects.append(replace(found_object, result=replace(result, hits=hits)))
    return whole, objects
