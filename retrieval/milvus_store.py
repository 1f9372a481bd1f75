"""Catalog vectors in Milvus: the `VectorStore` for catalogs past one machine.

One row per image: `key` (primary), `product_id`, `categories` (an array, for the filter),
`content` (what an incremental sync compares) and the unit `vector`, inner-product metric. The
collection's properties record the extractor fingerprint that made its vectors, and a store
opened with another fingerprint is refused — the same rule as an index directory's manifest.
`uri` is what `pymilvus.MilvusClient` takes: a local `*.db` file (Milvus Lite, for tests and one
machine) or `http://host:19530` (a Milvus server or cluster).

A store that cannot be reached, refuses a request or does not answer in `READ_SECONDS` raises
`StoreError` (one line), so `snapfind` prints it and a serving bot answers and keeps running; a
collection found released (a restarted Milvus Lite server forgets what it had loaded) is loaded
again and asked once more.
"""

import json
from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from retrieval.errors import ConfigError, IndexMismatchError, IndexNotFoundError, StoreError
from retrieval.extractor import Fingerprint
from retrieval.vector_store import ProductScore, StoredVector, best_per_product

MAX_ID = 512  # longest product id / key stored
MAX_CATEGORIES = 16
MAX_CATEGORY = 128
FINGERPRINT = "snapfind.fingerprint"  # collection property: JSON of the extractor fingerprint
FETCH_FACTOR = 4  # images fetched per product asked for, before collapsing to products
PAGE = 4096  # rows per page when reading every row back
KEYS_PER_QUERY = 1000  # keys named in one query's filter
NOT_LOADED = 101  # Milvus's error code for a collection that is not loaded
READ_SECONDS = 10.0  # longest wait for a search or query: a frozen server held a bot's one
# inference thread 70 s a query (pymilvus's retries) while every other shopper waited

T = TypeVar("T")


class MilvusStore:
    """A Milvus collection of one extractor's vectors."""

    def __init__(
        self,
        uri: str,
        collection: str,
        fingerprint: Fingerprint,
        index_type: str = "FLAT",
        *,
        create: bool = False,
    ) -> None:
        """Open `collection`; a missing one is made only with `create` (the build's sync), so
        a server pointed at a wrong name says so instead of serving an empty catalog."""
        self._name = collection
        self.fingerprint = fingerprint
        try:
            self._client = MilvusClient(uri)
        except (MilvusException, grpc.RpcError) as error:  # no server, a .db's folder missing
            raise StoreError(f"cannot open Milvus at {uri}: {_reason(error)}") from error
        try:
            if self._client.has_collection(collection):
                self._check_fingerprint()
            elif create:
                self._create(index_type)
            else:
                raise IndexNotFoundError(
                    f"Milvus at {uri} has no collection {collection!r}; fill it first: "
                    f"snapfind index build --store milvus://...?collection={collection}"
                )
            self._client.load_collection(collection)
        except (MilvusException, grpc.RpcError) as error:
            self._client.close()
            where = f"Milvus at {uri}, collection {collection!r}"
            raise StoreError(f"{where}: {_reason(error)}") from error
        except Exception:
            self._client.close()
            raise

    def _create(self, index_type: str) -> None:
        schema = self._client.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        schema.add_field("product_id", DataType.VARCHAR, max_length=MAX_ID)
        schema.add_field(
            "categories",
            DataType.ARRAY,
            element_type=DataType.VARCHAR,
            max_capacity=MAX_CATEGORIES,
            max_length=MAX_CATEGORY,
        )
        schema.add_field("content", DataType.VARCHAR, max_length=MAX_ID)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.fingerprint.dim)
        index = self._client.prepare_index_params()
        index.add_index("vector", index_type=index_type, metric_type="IP")
        made_by = json.dumps(self.fingerprint.as_dict())  # with the collection, in one request:
        # a sync killed between two requests left one no later sync would fill
        self._client.create_collection(
            self._name, schema=schema, index_params=index, properties={FINGERPRINT: made_by}
        )

    def _check_fingerprint(self) -> None:
        properties = self._client.describe_collection(self._name).get("properties") or {}
        try:
            made_by = json.loads(properties[FINGERPRINT])
        except (ValueError, KeyError, TypeError):
            made_by = None
        if made_by != self.fingerprint.as_dict():
            raise IndexMismatchError(
                f"Milvus collection {self._name!r} was made by another extractor ({made_by}) "
                f"than this one ({self.fingerprint.as_dict()}): drop it or use another collection"
            )

    def _call(self, request: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """`request(*args, **kwargs)` of the client: a released collection is loaded and asked
        again once; any other refusal becomes a one-line `StoreError`."""
        try:
            try:
                return request(*args, **kwargs)
            except MilvusException as error:
                if error.code != NOT_LOADED:
                    raise
                self._client.load_collection(self._name)
                return request(*args, **kwargs)
        except (MilvusException, grpc.RpcError) as error:  # gRPC's own: a deadline passed
            raise StoreError(f"Milvus collection {self._name!r}: {_reason(error)}") from error

    def add(self, items: Sequence[StoredVector]) -> None:
        if items:
            self._call(self._client.upsert, self._name, [_row(item) for item in items])

    def remove(self, product_ids: Sequence[str]) -> None:
        if product_ids:
            where = f"product_id in {_quoted(product_ids)}"
            self._call(self._client.delete, self._name, filter=where)

    def search(
        self, vector: np.ndarray, k: int, category: str | None = None, exclude: Sequence[str] = ()
    ) -> list[ProductScore]:
        conditions = []
        if category is not None:
            conditions.append(f"array_contains(categories, {_literal(category.lower())})")
        if exclude:
            conditions.append(f"product_id not in {_quoted(exclude)}")
        query = [np.asarray(vector, dtype=np.float32).tolist()]
        limit = FETCH_FACTOR * k
        while True:
            found = self._call(
                self._client.search,
                self._name,
                query,
                limit=limit,
                filter=" and ".join(conditions),
                output_fields=["product_id"],
                search_params={"metric_type": "IP"},
                timeout=READ_SECONDS,
            )[0]
            hits = [(hit["entity"]["product_id"], hit["distance"]) for hit in found]
            best = best_per_product(hits, (), k)
            if len(best) >= k or len(found) < limit:
                return best
            limit *= 4

    def vector_of(self, product_id: str) -> np.ndarray:
        rows = self._call(
            self._client.query,
            self._name,
            filter=f"product_id == {_literal(product_id)}",
            output_fields=["key", "vector"],
            timeout=READ_SECONDS,
        )
        if not rows:
            raise KeyError(product_id)
        first = min(rows, key=lambda row: row["key"])
        return np.asarray(first["vector"], dtype=np.float32)

    def vectors_of(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):
            rows = self._call(
                self._client.query,
                self._name,
                filter=f"key in {_quoted(keys[start : start + KEYS_PER_QUERY])}",
                output_fields=["key", "vector"],
                timeout=READ_SECONDS,
            )
            found.update((row["key"], np.asarray(row["vector"], np.float32)) for row in rows)
        return found

    def contents(self) -> dict[str, str]:
        """key → content of every stored row (what an incremental sync compares).

        Paged with a query iterator: one plain query returns at most 16,384 rows.
        """
        pages = self._call(
            self._client.query_iterator,
            self._name,
            batch_size=PAGE,
            filter='key != ""',
            output_fields=["content"],
        )
        found: dict[str, str] = {}
        try:
            while rows := self._call(pages.next):
                found.update((row["key"], row["content"]) for row in rows)
        finally:
            pages.close()
        return found

    def remove_keys(self, keys: Sequence[str]) -> None:
        if keys:
            self._call(self._client.delete, self._name, ids=list(keys))

    def close(self) -> None:
        self._client.close()


def _row(item: StoredVector) -> dict:
    """The collection's row of an image; ConfigError, before the batch is written, for one
    the schema cannot hold whole (a long id failed the whole sync with an RPC error; a 17th
    category was cut off, so a filter on it missed the product)."""
    categories = [c.lower() for c in item.categories]
    if len(item.key) > MAX_ID:
        problem = f"its id and picture number {item.key[:40]!r}… are past {MAX_ID} characters"
    elif len(categories) > MAX_CATEGORIES:
        problem = (
            f"{item.product_id[:80]!r} is in {len(categories)} categories, {MAX_CATEGORIES} at most"
        )
    else:
        return {
            "key": item.key,
            "product_id": item.product_id,
            "categories": categories,
            "content": item.content,
            "vector": np.asarray(item.vector, dtype=np.float32).tolist(),
        }
    raise ConfigError(f"a product cannot go into the Milvus store: {problem}; change the catalog")


def _reason(error: Exception) -> str:
    """One line of what pymilvus or gRPC said went wrong."""
    if isinstance(error, MilvusException):
        return " ".join(str(error.message).split())
    details = getattr(error, "details", None)  # a gRPC call's error (a deadline) has details()
    return " ".join(str(details() if callable(details) else error).split())


def _literal(value: str) -> str:
    """A Milvus string literal: quotes and backslashes escaped as in JSON (the filter grammar's
    own quoting), other characters as they are. `\\uXXXX` escapes are not read by Milvus Lite:
    a category or id in Cyrillic made every filter on it fail."""
    return json.dumps(value, ensure_ascii=False)


def _quoted(values: Sequence[str]) -> str:
    """A Milvus list literal of strings (`_literal` each)."""
    return "[" + ", ".join(_literal(v) for v in values) + "]"
