"""The plain types a query returns: no FAISS, no Keras, nothing but numpy and the stdlib.

Front ends (the bot, the CLI) and test fakes import these, never the index or the model, so
importing them loads neither FAISS nor TensorFlow.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Product:
    """One catalog product, as a reply shows it."""

    id: str
    title: str
    categories: tuple[str, ...]
    image: Path | None
    url: str | None = None
    price: str | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Hit:
    """One product in an answer, with its best image's cosine similarity to the query."""

    product: Product
    score: float
    also_as: tuple[Product, ...] = ()  # products showing the same picture, merged into this slot


@dataclass(frozen=True)
class Page:
    """Which part of a ranking a search returns: `k` products from rank `offset` (0-based),
    only `category` if given, never the products in `exclude`.

    The bot's "More", "Only …" and "Similar" buttons are pages of one cached query, so the
    four travel together through every layer that ranks.
    """

    k: int = 5
    category: str | None = None
    offset: int = 0
    exclude: tuple[str, ...] = ()

    @property
    def end(self) -> int:
        """How many ranked products the page needs: `offset + k`."""
        return self.offset + self.k

    def of(self, ranked: list[Hit]) -> list[Hit]:
        """This page of a ranking that starts at rank 0."""
        return ranked[self.offset : self.end]


FIRST_PAGE = Page()  # the first five of any category


@dataclass
class QueryResult:
    """A query's vector (kept for "more" and filters without re-extraction), hits and timings."""

    vector: np.ndarray  # (D,) unit vector
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    no_match: bool = False  # nothing is similar enough: say so, and still show the closest


@dataclass(frozen=True)
class CatalogInfo:
    """What the index being served is: for /stats, /reload, the log and health checks."""

    products: int
    images: int
    categories: tuple[str, ...]  # every category label, sorted
    release: str  # the release folder's name
    built_at: str  # ISO 8601, UTC
    catalog: str
    backbone: str
    model_name: str
    input_size: int
    dim: int
    weights_id: str


@dataclass(frozen=True)
class FoundObject:
    """One piece of furniture in a photo, searched on its own."""

    box: tuple[int, int, int, int]  # left, top, right, bottom in the searched image's pixels
    label: str  # as its button reads: its products' category, or within a catch-all their type
    score: float  # how clearly the box matches some product (higher: clearer)
    result: QueryResult  # its own vector (for "more" without a forward pass) and hits
    kind: str = ""  # the kind its pages put first (`search_object_vector`'s); "": none


MIN_OBJECTS = 2  # fewer objects found: the whole photo's album, as for any photo


@dataclass
class ObjectsResult:
    """A photo searched whole and object by object, from one index."""

    whole: QueryResult  # the photo searched whole (a room photo: its vector from the region map)
    objects: list[FoundObject]  # most prominent first; [] for a plain product photo
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, all of them

    @property
    def shown(self) -> list[FoundObject]:
        """The objects a reply boxes and offers: all of them from MIN_OBJECTS on, else none."""
        return self.objects if len(self.objects) >= MIN_OBJECTS else []

    @property
    def first(self) -> QueryResult:
        """The album sent at once: object 1's where objects are shown, else the whole photo's."""
        shown = self.shown
        return shown[0].result if shown else self.whole
