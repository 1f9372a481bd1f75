"""Everything about the inline buttons: their payloads, the keyboard, and the query they name.

A payload is `action|key|category|number`, always under Telegram's 64 bytes: `key` names a
`QueryState` in the query cache, `category` is a position in that query's label list (-1: no
filter), `number` is the offset of the page to show ("more", "filter"), the rank of the
result to search from ("similar") or the object of a room photo to search (1, 2, …; 0: the
whole photo). Buttons carry positions, never free text, so a long
category name or product id cannot push a payload past the limit; the labels are fixed when
the query is cached, so drawing a keyboard never changes what a cached query means.
"""

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.captions import shown
from retrieval.results import Hit

MAX_BYTES = 64  # Telegram's limit on callback_data
MAX_KEY = 40
NO_FILTER = -1
MAX_RESULTS = 50  # "More" stops here: past it, a new photo serves better than paging
SIMILAR_PER_ROW = 2
FILTERS_PER_ROW = 3
OBJECTS_PER_ROW = 3


class Action(StrEnum):
    MORE = "m"
    FILTER = "f"
    SIMILAR = "s"
    OBJECT = "o"


@dataclass(frozen=True)
class PhotoObject:
    """One piece of furniture found in a photo: its button's label and its search vector."""

    label: str
    vector: np.ndarray  # (D,) unit vector: its album, pages and filters need no forward pass
    kind: str = ""  # the kind its pages put first (`FoundObject.kind`)


@dataclass(frozen=True)
class Press:
    """What a button asks for."""

    action: Action
    key: str
    category: int = NO_FILTER
    number: int = 0


@dataclass(frozen=True)
class QueryState:
    """What the query cache remembers about one search: enough to page, filter and pivot.

    Only the vector is kept, never the hits, so "More" and filters are answered from the
    index that is current when the button is pressed (hot reloads included) without
    re-extraction. `labels` (the catalog's categories when the query was cached) give the
    filter buttons their numbers.
    """

    vector: np.ndarray  # (D,) unit vector
    labels: tuple[str, ...]
    exclude: tuple[str, ...] = ()  # e.g. the product a "similar to" search started from
    owners: frozenset[int] = frozenset()  # the users shown it: only they may press its buttons
    objects: tuple[PhotoObject, ...] = ()  # a room photo's objects, in button order
    of_object: bool = False  # an object's album: its pages are ranked as the object's are
    kind: str = ""  # an object album's: the kind its pages put first (`PhotoObject.kind`)

    def shown_to(self, user_id: int) -> "QueryState":
        """This state, with `user_id` among those whose buttons lead on from it."""
        return self if user_id in self.owners else replace(self, owners=self.owners | {user_id})

    def label(self, number: int) -> str | None:
        """The category a button names (None: no filter); raises ValueError if unknown."""
        if number == NO_FILTER:
            return None
        if not 0 <= number < len(self.labels):
            raise ValueError(f"no label number {number} in this query")
        return self.labels[number]

    def label_number(self, label: str) -> int | None:
        """The button position of `label`, or None if it was not a category back then."""
        try:
            return self.labels.index(label)
        except ValueError:
            return None


def encode(press: Press) -> str:
    data = f"{press.action}|{press.key}|{press.category}|{press.number}"
    if len(data.encode()) > MAX_BYTES or "|" in press.key or not press.key:
        raise ValueError(f"callback data would be invalid: {data!r}")
    return data


def decode(data: str) -> Press:
    """Parse a payload; raises ValueError on anything this bot did not make."""
    parts = data.split("|")
    if len(parts) != 4 or not parts[1]:
        raise ValueError(f"unknown callback data {data!r}")
    action, key, category, number = parts
    try:
        press = Press(Action(action), key, int(category), int(number))
    except ValueError:
        raise ValueError(f"unknown callback data {data!r}") from None
    if press.category < NO_FILTER or press.number < 0:
        raise ValueError(f"unknown callback data {data!r}")
    return press


def photo_key(file_unique_id: str) -> str:
    """Cache key of an uploaded photo: its file_unique_id, hashed only if unusually long."""
    if len(file_unique_id.encode()) <= MAX_KEY and "|" not in file_unique_id:  # bytes count
        return file_unique_id
    return "h" + _digest(file_unique_id)


def product_key(product_id: str) -> str:
    """Cache key of a "similar to this product" query."""
    return "p" + _digest(product_id)


def object_key(key: str, number: int) -> str:
    """Cache key of the album of object `number` (1-based) of the photo cached as `key`."""
    return "o" + _digest(f"{key}|{number}")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=9).hexdigest()


def results_keyboard(
    key: str, state: QueryState, hits: list[Hit], offset: int, category: int, page_size: int
) -> InlineKeyboardMarkup | None:
    """Buttons for the page of `hits` that starts at `offset` under filter `category`."""
    similar = [
        _button(f"Similar to #{offset + i + 1}", Press(Action.SIMILAR, key, category, offset + i))
        for i in range(len(hits))
    ]
    labels = dict.fromkeys(label for hit in hits for label in hit.product.categories)
    numbers = {label: state.label_number(label) for label in labels}
    filters = [
        _button(f"Only {shown(label)}", Press(Action.FILTER, key, number))
        for label, number in numbers.items()
        if number is not None and number != category
    ]
    if category != NO_FILTER:
        filters.append(_button("All categories", Press(Action.FILTER, key, NO_FILTER)))
    rows = _rows(similar, SIMILAR_PER_ROW) + _rows(filters, FILTERS_PER_ROW)
    next_offset = offset + len(hits)
    if len(hits) == page_size and next_offset < MAX_RESULTS:
        rows.append([_button("More ▸", Press(Action.MORE, key, category, next_offset))])
    return InlineKeyboardMarkup(rows) if rows else None


def objects_keyboard(key: str, state: QueryState) -> InlineKeyboardMarkup:
    """One button per object ("1 · sofa", "2 · lamp", …) and "Whole photo", each for its album."""
    picks = [
        _button(f"{n} · {shown(found.label)}", Press(Action.OBJECT, key, NO_FILTER, n))
        for n, found in enumerate(state.objects, start=1)
    ]
    whole = _button("Whole photo", Press(Action.OBJECT, key, NO_FILTER, 0))
    return InlineKeyboardMarkup([*_rows(picks, OBJECTS_PER_ROW), [whole]])


def without_more(markup: InlineKeyboardMarkup) -> InlineKeyboardMarkup | None:
    """The same keyboard minus its More button (that page is now shown below it)."""
    rows = [
        [b for b in row if not str(b.callback_data or "").startswith(f"{Action.MORE}|")]
        for row in markup.inline_keyboard
    ]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(rows) if rows else None


def _button(text: str, press: Press) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=encode(press))


def _rows(buttons: list[InlineKeyboardButton], per_row: int) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
