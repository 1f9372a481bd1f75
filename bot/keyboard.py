"""The inline keyboard under an album: Similar to #n, one filter per category, More."""

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callback_data import NO_FILTER, Action, Press, encode
from bot.captions import LABEL_LIMIT, clip
from bot.query_state import QueryState
from retrieval.index_store import Hit

MAX_RESULTS = 50  # "More" stops here: past it, a new photo serves better than paging
SIMILAR_PER_ROW = 2
FILTERS_PER_ROW = 3


def results_keyboard(
    key: str, state: QueryState, hits: list[Hit], offset: int, category: int, page_size: int
) -> InlineKeyboardMarkup | None:
    """Buttons for the page of `hits` that starts at `offset` under filter `category`."""
    similar = [
        _button(f"Similar to #{offset + i + 1}", Press(Action.SIMILAR, key, category, offset + i))
        for i in range(len(hits))
    ]
    labels = dict.fromkeys(label for hit in hits for label in hit.product.categories)
    filters = [
        _button(f"Only {clip(label, LABEL_LIMIT)}", Press(Action.FILTER, key, number))
        for label in labels
        if (number := state.label_number(label)) != category
    ]
    if category != NO_FILTER:
        filters.append(_button("All categories", Press(Action.FILTER, key, NO_FILTER)))
    rows = _rows(similar, SIMILAR_PER_ROW) + _rows(filters, FILTERS_PER_ROW)
    next_offset = offset + len(hits)
    if len(hits) == page_size and next_offset < MAX_RESULTS:
        rows.append([_button("More ▸", Press(Action.MORE, key, category, next_offset))])
    return InlineKeyboardMarkup(rows) if rows else None


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
