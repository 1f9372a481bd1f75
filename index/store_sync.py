"""Catalog → a vector database, incrementally: upsert what changed, delete what is gone.

`snapfind index build --store milvus://…` first builds as usual (only new or changed images
are embedded, into the vector cache), then mirrors the catalog into the store from that cache:
each image row carries a `content` hash of its image and its product's metadata, so a row
whose hash is unchanged is left alone, a new or changed one is upserted, and a row whose
product or image left the catalog is deleted. The bot searching the store sees the change
at once, without a restart. The store refuses a collection made by another extractor.
"""

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from index.build import CACHE
from index.catalog import CatalogEntry, load_catalog
from index.vector_cache import VectorCache
from retrieval.errors import ConfigError
from retrieval.extractor import Fingerprint
from retrieval.head import ProjectionHead, load_head
from retrieval.manifest import MANIFEST, Manifest
from retrieval.store_target import milvus_target
from retrieval.vector_store import StoredVector, picture_keys

BATCH = 1000  # rows per upsert


@dataclass(frozen=True)
class SyncReport:
    upserted: int
    deleted: int
    unchanged: int


def rows_of(entries: list[CatalogEntry]) -> dict[str, tuple[CatalogEntry, str]]:
    """key → (entry, content hash of image + product metadata), a `picture_key` per image."""
    rows: dict[str, tuple[CatalogEntry, str]] = {}
    for key, entry in zip(picture_keys(e.id for e in entries), entries, strict=True):
        meta = json.dumps(
            [entry.content_hash, entry.title, entry.categories, entry.url, entry.price], default=str
        )
        rows[key] = (entry, hashlib.sha256(meta.encode()).hexdigest())
    return rows


def sync_store(
    store,
    catalog: Path,
    cache_dir: Path,
    fingerprint: Fingerprint,
    head: ProjectionHead | None = None,
) -> SyncReport:
    """Mirror the catalog's cached vectors into `store` (a `MilvusStore`); see the module doc.

    The cache holds the network's vectors (index/build.py); `head` is the tuned head the
    fingerprint names, applied on the way into the store."""
    cache = VectorCache(cache_dir, replace(fingerprint, head=""))
    try:
        entries = load_catalog(catalog).entries
        present = cache.hashes_among(e.content_hash for e in entries)
        wanted = rows_of([e for e in entries if e.content_hash in present])
        stored = store.contents()
        changed = [key for key, (_, content) in wanted.items() if stored.get(key) != content]
        gone = [key for key in stored if key not in wanted]
        store.remove_keys(gone)
        for start in range(0, len(changed), BATCH):
            keys = changed[start : start + BATCH]
            vectors = cache.get_many(wanted[key][0].content_hash for key in keys)
            if head is not None and vectors:
                digests = list(vectors)
                vectors = dict(
                    zip(digests, head.apply(np.stack(list(vectors.values()))), strict=True)
                )
            store.add([_stored(key, *wanted[key], vectors) for key in keys])
    finally:
        cache.close()
    return SyncReport(len(changed), len(gone), len(wanted) - len(changed))


def _stored(key: str, entry: CatalogEntry, content: str, vectors: dict) -> StoredVector:
    return StoredVector(key, entry.id, entry.categories, vectors[entry.content_hash], content)


def sync_after_build(store: str, catalog: Path, index_dir: Path, release: Path) -> SyncReport:
    """The `--store` step of `snapfind index build`: sync with the release's extractor's cache."""
    from retrieval.milvus_store import MilvusStore  # pymilvus only where a store is asked for

    fingerprint = Manifest.read(release / MANIFEST).fingerprint
    head = load_head(index_dir) if fingerprint.head else None
    if fingerprint.head and (head is None or head.head_id != fingerprint.head):
        raise ConfigError(
            f"the tuned head beside {index_dir} is not the one its index was built with"
        )
    uri, collection = milvus_target(store)
    milvus = MilvusStore(uri, collection, fingerprint, create=True)
    try:
        return sync_store(milvus, catalog, Path(index_dir) / CACHE, fingerprint, head)
    finally:
        milvus.close()
