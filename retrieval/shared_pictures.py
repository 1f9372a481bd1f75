"""One slot per picture: products that share a photo fill one place in a page, not two.

A shop often files one photo under several products (colours, sizes, sets). Shown as they come,
the same picture fills two of five slots. The merge keeps the best-ranked product of each picture
and names the others on its hit (`Hit.also_as`), for a caption's "also as …".
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from retrieval.results import Hit

H = TypeVar("H", bound=Hit)


def merge_shared_pictures(hits: Sequence[H], picture_of: Callable[[str], str | None]) -> list[H]:
    """Hits with one entry per picture, best first; later products of a picture go in `also_as`.

    `picture_of` maps a product id to its picture's content hash (None: a picture of its own).
    """
    merged: list[H] = []
    slot_of: dict[str, int] = {}
    for hit in hits:
        picture = picture_of(hit.product.id)
        if picture is None or picture not in slot_of:
            if picture is not None:
                slot_of[picture] = len(merged)
            merged.append(hit)
            continue
        first = merged[slot_of[picture]]
        merged[slot_of[picture]] = replace(first, also_as=(*first.also_as, hit.product))
    return merged
