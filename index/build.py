"""Catalog → published index: embed what changed, write a release, publish it atomically.

Stages: read catalog → reuse cached vectors → decode + embed the rest (progress bar) →
FAISS index + products.sqlite + manifest in a staging folder → publish.
"""

import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.catalog import CatalogEntry, load_catalog
from index.choice import choose_index
from index.publish import publish, staging_dir
from index.vector_cache import VectorCache
from index.vector_writer import write_from_cache
from retrieval.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_image
from retrieval.errors import ImageError, SnapfindError
from retrieval.extractor import Extractor
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS, Manifest
from retrieval.products import SCHEMA

log = logging.getLogger(__name__)

CACHE = "cache"
UNREADABLE = "unreadable.tsv"


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the log, the CLI and tests."""

    release: Path
    products: int
    vectors: int
    embedded: int  # images run through the network in this build
    reused: int  # images whose cached vector was reused
    unreadable: int
    seconds: float
    index_key: str


@dataclass(frozen=True)
class BuildOptions:
    """Knobs of a build that are not the extractor."""

    full: bool = False
    progress: bool = True
    batch_size: int = 16
    ram_budget_bytes: int = 4 * 2**30
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS


def build_index(
    catalog: Path, index_dir: Path, extractor: Extractor, options: BuildOptions | None = None
) -> BuildReport:
    """Build (incrementally unless `options.full`) and publish an index of `catalog`."""
    options = options or BuildOptions()
    started = time.perf_counter()
    index_dir = Path(index_dir)
    source = load_catalog(catalog)
    entries, unreadable = source.entries, list(source.unreadable)
    if not entries:
        raise SnapfindError(f"catalog {catalog} has no readable images")

    cache = VectorCache(index_dir / CACHE, extractor.fingerprint)
    try:
        hashes = {e.content_hash for e in entries}
        vectors = set() if options.full else cache.hashes_among(hashes)  # read back in chunks
        reused = len(vectors)
        todo = [e for e in _unique_by_hash(entries) if e.content_hash not in vectors]
        embedded = _embed(todo, extractor, cache, vectors, unreadable, options)
        cache.keep_only(hashes)
    finally:
        cache.close()

    kept = [e for e in entries if e.content_hash in vectors]
    if not kept:
        raise SnapfindError(f"no image of catalog {catalog} could be decoded")
    staging = staging_dir(index_dir)
    choice = choose_index(len(kept), extractor.fingerprint.dim, options.ram_budget_bytes)
    hashes_in_order = [e.content_hash for e in kept]
    write_from_cache(
        staging / VECTORS, choice, index_dir / CACHE, extractor.fingerprint, hashes_in_order
    )
    products = _write_products(staging / PRODUCTS, kept)
    (staging / UNREADABLE).write_text(
        "".join(f"{path}\t{reason}\n" for path, reason in unreadable), encoding="utf-8"
    )
    seconds = time.perf_counter() - started
    manifest = Manifest(
        fingerprint=extractor.fingerprint,
        model_name=extractor.model_name,
        index_key=choice.key,
        products=products,
        vectors=len(kept),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        catalog=str(Path(catalog).resolve()),
        nprobe=choice.nprobe,
        unreadable=len(unreadable),
        extra={"embedded": embedded, "reused": reused, "build_seconds": round(seconds, 2)},
    )
    (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    release = publish(index_dir, staging)
    log.info("published %s: %d products, %d vectors", release, products, len(kept))
    return BuildReport(
        release, products, len(kept), embedded, reused, len(unreadable), seconds, choice.key
    )


def _unique_by_hash(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    """One entry per image content: a picture shared by two products is embedded once."""
    return list({e.content_hash: e for e in reversed(entries)}.values())[::-1]


def _embed(
    todo: list[CatalogEntry],
    extractor: Extractor,
    cache: VectorCache,
    vectors: set[str],
    unreadable: list[tuple[str, str]],
    options: BuildOptions,
) -> int:
    """Embed `todo` batch by batch, caching each batch; returns how many were embedded."""
    embedded = 0
    bar = tqdm(total=len(todo), unit="img", desc="embedding", disable=not options.progress)
    with bar:
        for batch in _decoded_batches(todo, options, extractor.input_size):
            images = [image for _, image in batch if not isinstance(image, ImageError)]
            ok = [entry for entry, image in batch if not isinstance(image, ImageError)]
            for entry, image in batch:
                if isinstance(image, ImageError):
                    unreadable.append((str(entry.image), str(image)))
            if images:
                fresh = dict(
                    zip(
                        (e.content_hash for e in ok),
                        extractor.embed(images, len(images)),
                        strict=True,
                    )
                )
                cache.put_many(fresh)
                vectors.update(fresh)  # the hashes; vectors are read back from the cache
                embedded += len(fresh)
            bar.update(len(batch))
    return embedded


def _decoded_batches(
    todo: list[CatalogEntry], options: BuildOptions, input_size: int
) -> Iterator[list[tuple[CatalogEntry, np.ndarray | ImageError]]]:
    """Decode ahead in two threads while the network runs on the previous batch."""

    def decode(entry: CatalogEntry) -> np.ndarray | ImageError:
        try:
            data = entry.image.read_bytes()
            return decode_image(
                data,
                max_bytes=options.max_image_bytes,
                max_pixels=options.max_image_pixels,
                min_side=input_size,
            )
        except ImageError as error:
            return error
        except OSError as error:
            return ImageError(f"cannot read: {error.strerror}", "")

    with ThreadPoolExecutor(max_workers=2) as pool:
        ahead: deque[tuple[CatalogEntry, Future[np.ndarray | ImageError]]] = deque()
        pending = iter(todo)
        batch: list[tuple[CatalogEntry, np.ndarray | ImageError]] = []
        while True:
            while len(ahead) < 2 * options.batch_size and (entry := next(pending, None)):
                ahead.append((entry, pool.submit(decode, entry)))  # bounded look-ahead
            if not ahead:
                break
            entry, future = ahead.popleft()
            batch.append((entry, future.result()))
            if len(batch) == options.batch_size or not ahead:
                yield batch
                batch = []


def _write_products(path: Path, entries: list[CatalogEntry]) -> int:
    """products.sqlite: one row per product, one per image in vector order; returns products."""
    rows: dict[str, int] = {}
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        for vector_id, entry in enumerate(entries):
            if entry.id not in rows:
                rows[entry.id] = len(rows)
                db.execute(
                    "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rows[entry.id],
                        entry.id,
                        entry.title,
                        json.dumps(list(entry.categories)),
                        str(entry.image),
                        entry.url,
                        entry.price,
                        json.dumps(entry.extra, default=str),
                    ),
                )
            db.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?)",
                (vector_id, rows[entry.id], str(entry.image), entry.content_hash),
            )
    db.close()
    return len(rows)
