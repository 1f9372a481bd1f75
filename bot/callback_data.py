"""Inline-button payloads: `action|key|category|number`, always under Telegram's 64 bytes.

`key` names a query in the query cache, `category` is a position in that query's label list
(-1: no filter), `number` is the offset of the page to show ("more", "filter") or the rank of
the result to search from ("similar"). Buttons carry positions, never free text, so a long
category name or product id cannot push a payload past the limit.
"""

import hashlib
from dataclasses import dataclass
from enum import StrEnum

MAX_BYTES = 64  # Telegram's limit on callback_data
MAX_KEY = 40
NO_FILTER = -1


class Action(StrEnum):
    MORE = "m"
    FILTER = "f"
    SIMILAR = "s"


@dataclass(frozen=True)
class Press:
    """What a button asks for."""

    action: Action
    key: str
    category: int = NO_FILTER
    number: int = 0


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
    if len(file_unique_id) <= MAX_KEY and "|" not in file_unique_id:
        return file_unique_id
    return "h" + _digest(file_unique_id)


def product_key(product_id: str) -> str:
    """Cache key of a "similar to this product" query."""
    return "p" + _digest(product_id)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=9).hexdigest()
