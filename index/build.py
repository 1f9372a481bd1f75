"""Catalog → published index: embed what changed, write a release, publish it atomically.

Stages: read catalog → reuse cached vectors (the network's, before any tuned head) → decode +
embed the rest (progress bar) → the tuned head →
FAISS index + products.sqlite + manifest in a staging folder → publish → prune the cache.
One build per index folder at a time (`build_lock`); the cache is pruned only after a
successful publish, so a failed build leaves both the old index and the cache as they were.
"""

import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.build_lock import build_lock
from index.cache_calibration import no_match_from_cache
from index.catalog import CatalogAccess, CatalogEntry, load_catalog
from index.choice import choose_index
from index.embedding import EmbedOptions, ImageJob, cache_missing
from index.indexed_views import crop, view_key, with_views
from index.publish import discard_staging, publish, staging_dir
from index.room_references import write_room_references
from index.scene_views import VIEWS as SCENE_VIEWS
from index.scene_views import scene_jobs
from index.vector_cache import CacheError, VectorCache
from index.vector_writer import cached_vectors, write_from_cache
from retrieval.bounded_read import read_image_file
from retrieval.crop_gate import CropGate
from retrieval.embedder import Embedder
from retrieval.errors import SnapfindError
from retrieval.limits import DEFAULT_LIMITS, ImageLimits
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS, Manifest
from retrieval.model_input import decode_for_model
from retrieval.products import SCHEMA
from retrieval.rerank import DEFAULT as DEFAULT_RERANK
from retrieval.scene_views import SceneViews

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
    limits: ImageLimits = DEFAULT_LIMITS
    allow_roots: tuple[Path, ...] = ()  # folders besides the catalog's own images may be in
    objects: bool = False  # also write the region hubness, for finding objects in room photos
    views: int = 0  # crops of each picture indexed besides it (index/indexed_views.py)
    scenes: int = SCENE_VIEWS  # furnished views of tables and beds (index/scene_views.py)


def build_index(
    catalog: Path, index_dir: Path, extractor: Embedder, options: BuildOptions | None = None
) -> BuildReport:
    """Build (incrementally unless `options.full`) and publish an index of `catalog`."""
    options = options or BuildOptions()
    index_dir = Path(index_dir)
    with build_lock(index_dir):
        try:
            return _build_locked(catalog, index_dir, extractor, options)
        finally:
            discard_staging(index_dir)  # what a failed build began (a published one is renamed)


def _build_locked(
    catalog: Path, index_dir: Path, extractor: Embedder, options: BuildOptions
) -> BuildReport:
    started = time.perf_counter()
    source = load_catalog(catalog, CatalogAccess(options.allow_roots, options.limits.max_bytes))
    entries = source.entries
    if not entries:
        reason = ""
        if source.unreadable:  # say why, e.g. every image outside the folder (--allow-root)
            path, why = source.unreadable[0]
            reason = f": {len(source.unreadable)} unreadable, the first {path}: {why}"
        raise SnapfindError(f"catalog {catalog} has no readable images{reason}")

    decode = functools.partial(
        decode_for_model, input_size=extractor.input_size, limits=options.limits
    )
    read = functools.partial(_load, limits=options.limits, decode=decode)  # path → pixels
    jobs = [
        ImageJob(e.content_hash, str(e.image), functools.partial(read, e.image)) for e in entries
    ] + [
        ImageJob(
            view_key(e.content_hash, v),
            str(e.image),  # an unreadable image is listed once (dict below), not per crop
            functools.partial(_load_crop, read, e.image, v),
        )
        for v in range(options.views)
        for e in entries
    ]
    # the cache keeps the network's vectors; the tuned head is applied as the index is written,
    # so a new head (`snapfind tune`) costs no re-embedding
    plain = extractor.without_head()
    cache = VectorCache(index_dir / CACHE, plain.fingerprint)
    try:
        run = EmbedOptions(
            reuse=not options.full, batch_size=options.batch_size, progress=options.progress
        )
        done = cache_missing(plain, jobs, cache, run)  # the writers below stream them back
        kept = [e for e in entries if e.content_hash in done.keys]
        # companions are drawn from readable pictures only, so scenes wait for the pictures
        scenes = scene_jobs(kept, options.scenes, read)
        staged = cache_missing(plain, [j for _, j in scenes], cache, replace(run, desc="scenes"))
    finally:
        cache.close()
    unreadable = [*source.unreadable, *dict(done.unreadable + staged.unreadable).items()]
    reused = done.stats.cached + staged.stats.cached
    embedded = done.stats.extracted + staged.stats.extracted

    if not kept:
        raise SnapfindError(f"no image of catalog {catalog} could be decoded")
    staging = staging_dir(index_dir)
    # whole pictures, then their scene views, then their crops: see retrieval/scene_views.py
    viewed = [(e, key) for e, key in with_views(kept, options.views) if key in done.keys]
    furnished = [(e, job.key) for e, job in scenes if job.key in staged.keys]
    indexed = viewed[: len(kept)] + furnished + viewed[len(kept) :]
    choice = choose_index(len(indexed), extractor.fingerprint.dim, options.ram_budget_bytes)
    hashes_in_order = [key for _, key in indexed]  # cache keys in vector order
    pictures = [e.content_hash for e in kept]  # whole pictures: the threshold's sample
    cache_dir, head = index_dir / CACHE, extractor.apply_head  # the cache: no head applied
    written = write_from_cache(
        staging / VECTORS, choice, cache_dir, plain.fingerprint, hashes_in_order, head
    )
    products = _write_products(staging / PRODUCTS, [e for e, _ in indexed])
    if options.objects:
        vectors = cached_vectors(cache_dir, plain.fingerprint, pictures, head)  # as indexed
        write_room_references(  # the whole pictures, not the crops
            staging, extractor, kept, vectors, options.limits, options.progress
        )
    (staging / UNREADABLE).write_text(
        "".join(f"{path}\t{reason}\n" for path, reason in unreadable), encoding="utf-8"
    )
    seconds = time.perf_counter() - started
    manifest = Manifest(
        fingerprint=extractor.fingerprint,
        model_name=extractor.model_name,
        index_key=choice.key,
        products=products,
        vectors=len(indexed),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        catalog=str(Path(catalog).resolve()),
        nprobe=written.nprobe,  # the choice's, raised where the catalog needs more lists
        unreadable=len(unreadable),
        extra={
            "embedded": embedded,
            "reused": reused,
            "build_seconds": round(seconds, 2),
            "runtime": extractor.runtime_id,
        }
        | ({} if written.recall is None else {"ann_recall_at_5": round(written.recall, 3)})
        | DEFAULT_RERANK.to_manifest()
        | (SceneViews(len(kept), len(furnished)).to_manifest() if furnished else {})
        | (
            CropGate(options.views, len(kept) + len(furnished)).to_manifest()
            if options.views
            else {}
        )
        | no_match_from_cache(cache_dir, plain.fingerprint, pictures, head),
    )
    (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    release = publish(index_dir, staging)
    _prune_cache(index_dir, plain, {job.key for job in jobs} | {job.key for _, job in scenes})
    log.info("published %s: %d products, %d vectors", release, products, len(indexed))
    return BuildReport(
        release, products, len(indexed), embedded, reused, len(unreadable), seconds, choice.key
    )


def _load(path: Path, limits: ImageLimits, decode: Callable[[bytes], np.ndarray]) -> np.ndarray:
    """A catalog image's pixels: a bounded read of a regular file, then the product's decode."""
    return decode(read_image_file(path, limits.max_bytes))


def _load_crop(read: Callable[[Path], np.ndarray], path: Path, view: int) -> np.ndarray:
    """A catalog image's crop number `view`, from the pixels `read` (`_load`) gives."""
    return crop(read(path), view)


def _prune_cache(index_dir: Path, extractor: Embedder, hashes: set[str]) -> None:
    """Drop cached vectors of images gone from the catalog: only after a successful publish.
    The release is live by then, so a cache that cannot be written (read-only, a full disk)
    is a warning, not a failed build: its unused vectors only wait for the next build."""
    try:
        cache = VectorCache(index_dir / CACHE, extractor.fingerprint)
        try:
            cache.keep_only(hashes)
        finally:
            cache.close()
    except CacheError as error:
        log.warning("published, but the vector cache was not pruned: %s", error)


def _write_products(path: Path, entries: list[CatalogEntry]) -> int:
    """products.sqlite: one row per product, one per vector (an image or a crop of it) in
    vector order; returns products."""
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
