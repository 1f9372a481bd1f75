"""Embed whatever the vector cache lacks: the one loop the index build and the study share.

Images are loaded (decoded, resized and preprocessed) ahead in two threads while the network
runs on the previous batch, so the network's thread only runs the network; each batch's
vectors are cached as soon as they exist, so an interrupted run resumes where it stopped.
Nothing passed in is changed: the vectors come back in a new dict (`embed_missing`, for the
study) or stay in the cache alone (`cache_missing`, for a build of any size).
"""

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from index.vector_cache import VectorCache
from retrieval.embedder import Embedder
from retrieval.errors import ImageError

LOAD_THREADS = 2


@dataclass(frozen=True)
class ImageJob:
    """One vector to have: its cache key, where its pixels come from, and how to load them."""

    key: str
    source: str  # named in the unreadable list
    load: Callable[[], np.ndarray]  # -> (H, W, 3) uint8; raises ImageError or OSError


@dataclass(frozen=True)
class ExtractionStats:
    cached: int  # vectors found in the cache
    extracted: int  # vectors computed now
    seconds: float  # load + embed time of the extracted ones


@dataclass(frozen=True)
class Embedded:
    vectors: dict[str, np.ndarray]  # key -> (D,) unit vector, for every readable job
    stats: ExtractionStats
    unreadable: tuple[tuple[str, str], ...]  # (source, reason)


@dataclass(frozen=True)
class EmbedOptions:
    """How a run embeds: the same for a build and for the study."""

    reuse: bool = True  # take vectors the cache already has (off: embed everything again)
    batch_size: int = 16
    progress: bool = True
    desc: str = "embedding"  # the progress bar's label


@dataclass(frozen=True)
class CachedKeys:
    """What a streamed build keeps of the embedding: which keys the cache has, not the vectors."""

    keys: frozenset[str]  # every readable job's key: its vector is in the cache
    stats: ExtractionStats
    unreadable: tuple[tuple[str, str], ...]  # (source, reason)


def cache_missing(
    embedder: Embedder,
    jobs: Sequence[ImageJob],
    cache: VectorCache,
    options: EmbedOptions = EmbedOptions(),
) -> CachedKeys:
    """`embed_missing` for a build: vectors only go to the cache (memory: one batch, whatever
    the catalog's size); the index and the calibration read them back from it in chunks."""
    unique = _unique(jobs)
    present = cache.hashes_among(unique) if options.reuse else set()
    missing = [job for key, job in unique.items() if key not in present]
    fresh: set[str] = set()
    unreadable: list[tuple[str, str]] = []
    started = time.perf_counter()
    quiet = not options.progress or not missing
    with tqdm(total=len(missing), desc=options.desc, unit="img", disable=quiet) as bar:
        for batch in _loaded_batches(missing, options.batch_size, embedder):
            ok = [(job, pixels) for job, pixels in batch if not isinstance(pixels, ImageError)]
            unreadable += [(j.source, str(p)) for j, p in batch if isinstance(p, ImageError)]
            if ok:
                inputs = np.stack([pixels for _, pixels in ok])  # (B, S, S, 3) model input
                embedded = embedder.embed_prepared(inputs)  # (B, D)
                cache.put_many({job.key: row for (job, _), row in zip(ok, embedded, strict=True)})
                fresh.update(job.key for job, _ in ok)
            bar.update(len(batch))
    stats = ExtractionStats(len(present), len(fresh), time.perf_counter() - started)
    return CachedKeys(frozenset(present | fresh), stats, tuple(unreadable))


def embed_missing(
    embedder: Embedder,
    jobs: Sequence[ImageJob],
    cache: VectorCache,
    options: EmbedOptions = EmbedOptions(),
) -> Embedded:
    """Vectors for every job: cached ones (unless `reuse` is off), the rest embedded now.

    Jobs sharing a key (one picture under two products) are loaded and embedded once. The
    vectors are read back from the cache: for sets that fit in memory (the study's).
    """
    done = cache_missing(embedder, jobs, cache, options)
    return Embedded(cache.get_many(done.keys), done.stats, done.unreadable)


def _unique(jobs: Sequence[ImageJob]) -> dict[str, ImageJob]:
    unique: dict[str, ImageJob] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    return unique


Loaded = tuple[ImageJob, np.ndarray | ImageError]


def _load(job: ImageJob, embedder: Embedder) -> np.ndarray | ImageError:
    """The job's model input, (S, S, 3) float32, or the reason it has none."""
    try:
        return embedder.prepare([job.load()])[0]
    except ImageError as error:
        return error
    except OSError as error:
        return ImageError(f"cannot read: {error.strerror}", "")


def _loaded_batches(
    jobs: list[ImageJob], batch_size: int, embedder: Embedder
) -> Iterator[list[Loaded]]:
    """Batches of loaded jobs, loading a bounded number ahead in threads."""
    with ThreadPoolExecutor(max_workers=LOAD_THREADS) as pool:
        ahead: deque[tuple[ImageJob, Future[np.ndarray | ImageError]]] = deque()
        pending = iter(jobs)
        batch: list[Loaded] = []
        while True:
            while len(ahead) < 2 * batch_size and (job := next(pending, None)):
                ahead.append((job, pool.submit(_load, job, embedder)))  # bounded look-ahead
            if not ahead:
                break
            job, future = ahead.popleft()
            batch.append((job, future.result()))
            if len(batch) == batch_size or not ahead:
                yield batch
                batch = []
