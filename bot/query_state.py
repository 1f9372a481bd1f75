"""What the query cache remembers about one search: enough to page, filter and pivot.

Only the vector is kept, never the hits, so "More" and filters are answered from the index
that is current when the button is pressed (hot reloads included) without re-extraction.
"""

from dataclasses import dataclass, field

import numpy as np

from bot.callback_data import NO_FILTER


@dataclass
class QueryState:
    """A query's (D,) unit vector, products to leave out, the labels its buttons name, and
    the users who were shown it (only they may press its buttons)."""

    vector: np.ndarray
    exclude: tuple[str, ...] = ()  # e.g. the product a "similar to" search started from
    labels: list[str] = field(default_factory=list)
    owners: set[int] = field(default_factory=set)

    def label_number(self, label: str) -> int:
        """The button position of `label`, adding it on first use."""
        if label not in self.labels:
            self.labels.append(label)
        return self.labels.index(label)

    def label(self, number: int) -> str | None:
        """The category a button names (None: no filter); raises ValueError if unknown."""
        if number == NO_FILTER:
            return None
        if not 0 <= number < len(self.labels):
            raise ValueError(f"no label number {number} in this query")
        return self.labels[number]
