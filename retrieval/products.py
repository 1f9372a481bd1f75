"""Product metadata in SQLite, behind one narrow read interface."""

import json
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from retrieval.manifest import damaged
from retrieval.results import Hit, Product
from retrieval.shared_pictures import merge_shared_pictures

SCHEMA = """
CREATE TABLE products (
    row INTEGER PRIMARY KEY,      -- dense 0..P-1, the product's position
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    categories TEXT NOT NULL,     -- JSON list
    image TEXT,                   -- path of the product's first image
    url TEXT,
    price TEXT,
    extra TEXT NOT NULL           -- JSON object of any other catalog fields
);
CREATE TABLE images (
    vector_id INTEGER PRIMARY KEY, -- the row in the FAISS index
    product_row INTEGER NOT NULL REFERENCES products(row),
    image TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
"""
# Product records held in memory per release, least recently shown dropped first: ≈ 1.5 KB
# each with an IKEA description, so ≈ 6 MB at most
RECORDS_HELD = 4096


def _labels(categories: object) -> tuple[str, ...]:
    """A product's categories read back: a JSON list of strings, else `ValueError` (a bare
    string would otherwise become one category per letter)."""
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ValueError("categories is not a JSON list of strings")
    return tuple(categories)


class ProductStore:
    """Read-only view of products.sqlite; the vector → product map is held in memory."""

    def __init__(self, path: Path) -> None:
        """Open and check the whole file: a damaged one is refused here, at start or reload, as
        `IndexDamagedError`, never met at a shopper's photo or turned into wrong products."""
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._held: OrderedDict[int, Product] = OrderedDict()  # a release never changes
        self._held_lock = threading.Lock()
        try:
            self._load()
        except (sqlite3.Error, ValueError, TypeError) as error:  # not a database, bad JSON
            self._db.close()
            raise damaged(path, str(error)) from None

    def _load(self) -> None:
        """Hold the maps in memory, after checking the keys they are indexed by are dense: a
        gap would shift every later vector onto another product."""
        for table, column in (("products", "row"), ("images", "vector_id")):
            count, low, high = self._db.execute(
                f"SELECT count(*), min({column}), max({column}) FROM {table}"
            ).fetchone()
            if count and (low, high) != (0, count - 1):  # a unique integer key: dense iff so
                raise ValueError(f"{table}.{column} is not 0..{count - 1}")
        (stray,) = self._db.execute(
            "SELECT count(*) FROM images WHERE typeof(product_row) != 'integer' "
            "OR product_row NOT IN (SELECT row FROM products)"
        ).fetchone()
        if stray:
            raise ValueError(f"{stray} images name no product")
        rows = self._db.execute("SELECT vector_id, product_row FROM images ORDER BY vector_id")
        self.product_of_vector = np.array([r[1] for r in rows], dtype=np.int64)  # (V,)
        self._picture: dict[int, str] = {}  # product row → content hash of its first image
        for row, digest in self._db.execute(
            "SELECT product_row, content_hash FROM images ORDER BY vector_id DESC"
        ):
            self._picture[row] = digest  # later rows win: the product's lowest vector id
        self._ids: list[str] = []  # rows are dense (checked above): a row is its position
        self._categories: list[tuple[str, ...]] = []
        for pid, categories in self._db.execute("SELECT id, categories FROM products ORDER BY row"):
            self._ids.append(pid)
            self._categories.append(_labels(json.loads(categories)))
        self._row_of_id = {pid: row for row, pid in enumerate(self._ids)}
        (odd,) = self._db.execute(  # in SQLite: a million records' JSON parsed in C, not here
            "SELECT count(*) FROM products WHERE json_type(extra) IS NOT 'object'"
        ).fetchone()  # malformed JSON raises sqlite3.OperationalError
        if odd:
            raise ValueError(f"{odd} products' extra is not a JSON object")

    def __len__(self) -> int:
        return len(self._categories)

    def row_of(self, product_id: str) -> int | None:
        return self._row_of_id.get(product_id)

    def id_of(self, row: int) -> str:
        return self._ids[row]

    def picture_of(self, row: int) -> str | None:
        """The content hash of a product's first picture (shared pictures share it)."""
        return self._picture.get(row)

    def categories_of(self, row: int) -> tuple[str, ...]:
        return self._categories[row]

    def image_paths(self) -> list[str]:
        """Each vector's image file, in vector order (an indexed crop names its picture's)."""
        return [path for (path,) in self._db.execute("SELECT image FROM images ORDER BY vector_id")]

    def categories(self) -> list[str]:
        """Every category label, sorted."""
        return sorted({c for labels in self._categories for c in labels})

    def rows_in(self, category: str) -> np.ndarray:
        """Product rows that carry `category` (case-insensitive)."""
        wanted = category.casefold()
        return np.array(
            [i for i, labels in enumerate(self._categories) if wanted in map(str.casefold, labels)],
            dtype=np.int64,
        )

    def get(self, rows: list[int]) -> list[Product]:
        """Products at `rows`, in that order. The last RECORDS_HELD shown come from memory: a
        room photo pages six lists that share products, and hub pictures recur from photo to
        photo; holding them saved ≈ 1 ms of a room photo's 32 (docs/objects.md, twentieth
        pass). Shared records: callers never change them."""
        with self._held_lock:
            found = {row: self._held[row] for row in rows if row in self._held}
            for row in found:
                self._held.move_to_end(row)
        missing = [row for row in dict.fromkeys(rows) if row not in found]
        if missing:
            read = self._read(missing)
            found.update(read)
            with self._held_lock:
                self._held.update(read)
                while len(self._held) > RECORDS_HELD:
                    self._held.popitem(last=False)
        return [found[row] for row in rows]

    def _read(self, rows: list[int]) -> dict[int, Product]:
        """The records at `rows` from SQLite, by row."""
        marks = ",".join("?" * len(rows))
        return {
            row: Product(
                id=pid,
                title=title,
                categories=tuple(json.loads(cats)),
                image=Path(image) if image else None,
                url=url,
                price=price,
                extra=json.loads(extra),
            )
            for row, pid, title, cats, image, url, price, extra in self._db.execute(
                f"SELECT row, id, title, categories, image, url, price, extra "
                f"FROM products WHERE row IN ({marks})",
                rows,
            )
        }

    def hits(self, best: list[tuple[int, float]], slots: int | None = None) -> list[Hit]:
        """(product row, score) pairs, best first → a page's hits, products showing the same
        picture merged into one slot (so there may be fewer). `slots`: only the first that
        many, and only their products' records are read (a second stage ranks 30 candidates
        for a page of 5 or 10)."""
        if slots is not None:
            best = self._filling(best, slots)
        hits = [
            Hit(p, score)
            for p, (_, score) in zip(self.get([r for r, _ in best]), best, strict=True)
        ]
        return merge_shared_pictures(hits, self._picture_of_id)

    def _filling(self, best: list[tuple[int, float]], slots: int) -> list[tuple[int, float]]:
        """The pairs of `best` that fill its first `slots` slots, order kept: each slot's
        product and, wherever they rank, the others showing its picture (its "also as")."""
        opened: set[str | tuple[int]] = set()
        kept = []
        for row, score in best:
            picture = self._picture.get(row)
            slot = (row,) if picture is None else picture  # no picture: a slot of its own
            if slot not in opened:
                if len(opened) == slots:
                    continue
                opened.add(slot)
            kept.append((row, score))
        return kept

    def _picture_of_id(self, product_id: str) -> str | None:
        row = self.row_of(product_id)
        return None if row is None else self.picture_of(row)

    def close(self) -> None:
        self._db.close()
