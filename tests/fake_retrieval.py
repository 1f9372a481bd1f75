"""An in-memory `Retrieval` (retrieval/query_api.py): bot tests without TensorFlow or FAISS.

Products are points on a small vector space; a photo's bytes name the product it shows, so a
test chooses the answer by what it uploads. Ranking is plain numpy, one hit per product.
A room photo's bytes name one of `rooms`: it decodes to a real grey picture (whose grey level
says which room) with the room's products in it as objects, side by side.
"""

from dataclasses import dataclass, field

import numpy as np

from retrieval.errors import ImageError, SnapfindError
from retrieval.results import (
    FIRST_PAGE,
    CatalogInfo,
    FoundObject,
    Hit,
    ObjectsResult,
    Page,
    Product,
    QueryResult,
)

ROOM_SIZE = (240, 320)  # (height, width) of a fake room photo
OBJECT_WIDTH = 100  # each object's box: a column of the room, left to right


@dataclass
class FakeRetrieval:
    """`products` in order; product i's vector is the unit vector along axis i."""

    products: list[Product]
    release: str = "r1"
    published: str = "r1"  # what a reload would open; set it to "publish" a release
    broken: set[str] = field(default_factory=set)  # releases that fail to open
    calls: list[str] = field(default_factory=list)
    rooms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name → product ids in it
    objects_off: bool = False  # as a service whose object step cannot run here

    def _vectors(self) -> np.ndarray:
        return np.eye(len(self.products), dtype=np.float32)  # (P, P)

    def _rank(self, vector: np.ndarray, page: Page) -> list[Hit]:
        scores = self._vectors() @ vector  # (P,)
        ranked = [
            Hit(p, float(scores[i]))
            for i in np.argsort(-scores, kind="stable")
            if (p := self.products[i]).id not in page.exclude
            and (page.category is None or page.category in p.categories)
        ]
        return page.of(ranked)

    def decode(self, data: bytes) -> np.ndarray:
        """A fake photo's "pixels" are the bytes of the product id it names."""
        self.calls.append("decode")
        name = data.decode(errors="replace")
        if name in self.rooms:
            grey = 1 + list(self.rooms).index(name)
            return np.full((*ROOM_SIZE, 3), grey, np.uint8)  # (H, W, 3)
        if name not in [p.id for p in self.products]:
            raise ImageError("not a fake photo", "I couldn't read that as an image.")
        return np.frombuffer(data, dtype=np.uint8)

    def _vector_of(self, image: np.ndarray) -> np.ndarray:
        """A product photo's vector, or a room's: the mean of its products'."""
        names = [p.id for p in self.products]
        if image.ndim == 1:
            return self._vectors()[names.index(image.tobytes().decode())]
        inside = [names.index(pid) for pid in self._room(image)] or list(range(len(names)))
        vector = self._vectors()[inside].sum(axis=0)  # a picture of no room: like everything
        return vector / np.linalg.norm(vector)

    def _room(self, image: np.ndarray) -> tuple[str, ...]:
        """The products of the room whose grey level `image` has; () for any other picture."""
        rooms = list(self.rooms.values())
        grey = int(image[0, 0, 0])
        return rooms[grey - 1] if 1 <= grey <= len(rooms) else ()

    def search_bytes(self, data: bytes, page: Page = FIRST_PAGE) -> QueryResult:
        return self.search_image(self.decode(data), page)

    def search_image(self, image: np.ndarray, page: Page = FIRST_PAGE) -> QueryResult:
        self.calls.append("search_image")
        vector = self._vector_of(image)
        return QueryResult(vector, self._rank(vector, page))

    def search_objects(
        self, image: np.ndarray, k: int = 5, data: bytes | None = None
    ) -> ObjectsResult:
        """A room's products as its objects, boxed left to right; none in a product photo
        (`data` plays no part: no cut-outs here)."""
        self.calls.append("search_objects")
        vector = self._vector_of(image)
        whole = QueryResult(vector, self._rank(vector, Page(k)), {"extract": 0.001})
        found = []
        for i, pid in enumerate(self._room(image) if image.ndim == 3 else ()):  # left to right
            product = self.products[[p.id for p in self.products].index(pid)]
            own = self._vectors()[self.products.index(product)]
            box = (i * OBJECT_WIDTH + 5, 20, (i + 1) * OBJECT_WIDTH - 5, ROOM_SIZE[0] - 20)
            result = QueryResult(own, self._rank(own, Page(k)))
            kind = product.categories[0]  # every object here leads with its kind
            found.append(FoundObject(box, kind, 1.0 - 0.1 * i, result, kind))
        return ObjectsResult(whole, found, dict(whole.timings))

    def objects_ready(self) -> bool:
        return not self.objects_off

    def search_vector(self, vector: np.ndarray, page: Page = FIRST_PAGE) -> list[Hit]:
        self.calls.append("search_vector")
        return self._rank(vector, page)

    def search_object_vector(
        self, vector: np.ndarray, page: Page = FIRST_PAGE, kind: str = ""
    ) -> list[Hit]:
        self.calls.append(f"search_object_vector {kind}".strip())
        return self._rank(vector, page)

    def similar_to(self, product_id: str, k: int = 5) -> QueryResult | None:
        self.calls.append("similar_to")
        names = [p.id for p in self.products]
        if product_id not in names:
            return None
        vector = self._vectors()[names.index(product_id)] * 0.6 + 0.1  # near, not only itself
        vector /= np.linalg.norm(vector)
        return QueryResult(vector, self._rank(vector, Page(k, exclude=(product_id,))))

    def probe(self) -> bool:
        return bool(self.products)

    def describe(self) -> CatalogInfo:
        return CatalogInfo(
            products=len(self.products),
            images=len(self.products),
            categories=tuple(sorted({c for p in self.products for c in p.categories})),
            release=self.release,
            built_at="2026-01-01T00:00:00+00:00",
            catalog="fake.csv",
            backbone="fake",
            model_name="fake",
            input_size=8,
            dim=len(self.products),
            weights_id="none",
        )

    @property
    def reloadable(self) -> bool:
        return True

    def reload(self) -> CatalogInfo:
        if self.published in self.broken:
            raise SnapfindError(f"release {self.published} is damaged")
        self.release = self.published
        return self.describe()

    def reload_if_changed(self) -> CatalogInfo | None:
        if self.published == self.release:
            return None
        return self.reload()
