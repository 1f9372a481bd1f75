"""The one query API the front ends ask: what the bot and the CLI may call, and nothing more.

`SearchService` (retrieval/search.py) is the real thing; tests use an in-memory fake. Each call
runs on one index from start to end, even if a new release is swapped in meanwhile. Calls
block (they run the network and FAISS): call them from a worker thread, never an event loop.
"""

from typing import Protocol

import numpy as np

from retrieval.results import FIRST_PAGE, CatalogInfo, Hit, ObjectsResult, Page, QueryResult


class Retrieval(Protocol):
    """Search by photo bytes, decoded image, its objects or vector; pivot; probe; describe; reload.

    A search returns one `Page` of its ranking (`Page()`: the first five of any category);
    one hit per product, best first.
    """

    def decode(self, data: bytes) -> np.ndarray:
        """An upload's pixels as the product feeds them to the network; raises `ImageError`.

        Needs no model: a front end may run it beside the inference thread, so one huge
        image never holds up other people's searches.
        """
        ...

    def search_bytes(self, data: bytes, page: Page = FIRST_PAGE) -> QueryResult:
        """Decode, embed and search an upload; raises `ImageError` on bad bytes."""
        ...

    def search_image(self, image: np.ndarray, page: Page = FIRST_PAGE) -> QueryResult:
        """Embed an (H, W, 3) uint8 image and search."""
        ...

    def search_objects(
        self, image: np.ndarray, k: int = 5, data: bytes | None = None
    ) -> ObjectsResult:
        """The photo's own result (as `search_image`) and each piece of furniture in it, with
        its box (in `image`'s pixels), label, vector and `k` products; [] objects for a plain
        product photo, which costs what `search_image` does. `data`: the bytes `image` was
        decoded from, if the caller has them: a room's first object is cut out of them decoded
        larger, sharper (a JPEG's; a plain photo never decodes them again)."""
        ...

    def search_vector(self, vector: np.ndarray, page: Page = FIRST_PAGE) -> list[Hit]:
        """Search from a (D,) vector already computed (a cached query)."""
        ...

    def search_object_vector(
        self, vector: np.ndarray, page: Page = FIRST_PAGE, kind: str = ""
    ) -> list[Hit]:
        """Search from an object's cached vector and kind (`FoundObject.result.vector`,
        `FoundObject.kind`): hub pictures sink and that kind leads as in the object's first
        album, so a press shows what that album showed."""
        ...

    def similar_to(self, product_id: str, k: int = 5) -> QueryResult | None:
        """The product's stored vector and the `k` products nearest it (itself left out);
        None if the served catalog no longer has it."""
        ...

    def probe(self) -> bool:
        """Whether a search from a stored vector finds a product: the cheap health check."""
        ...

    def describe(self) -> CatalogInfo:
        """The index being served."""
        ...

    @property
    def reloadable(self) -> bool:
        """Whether there is an index directory to reload from."""
        ...

    def reload(self) -> CatalogInfo:
        """Open the published release and serve it from now on; raises `SnapfindError`."""
        ...

    def reload_if_changed(self) -> CatalogInfo | None:
        """`reload` if a release other than the served one was published since, else None.

        A release that fails to open is not tried again until another one is published.
        """
        ...
