"""Cached feature extraction for the study.

Vectors live in the index builder's ``VectorCache`` (one SQLite file per extractor fingerprint:
backbone, weights, input size, dimension; random weights are seeded, so they have a stable
identity too), keyed by the image's content hash, plus a variant tag for augmented views.
Re-running the study, or adding one backbone, extracts only what the cache lacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm import tqdm

from index.vector_cache import VectorCache


class Embedder(Protocol):
    def embed(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray: ...


@dataclass(frozen=True)
class Job:
    """One vector to have: its cache key and how to load its pixels if it is missing."""

    key: str
    load: Callable[[], np.ndarray]  # -> (H, W, 3) uint8


@dataclass(frozen=True)
class ExtractionStats:
    cached: int
    extracted: int
    seconds: float  # load + embed time of the extracted ones


def extract_cached(
    embedder: Embedder,
    jobs: Sequence[Job],
    cache: VectorCache,
    *,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "extracting",
) -> tuple[dict[str, np.ndarray], ExtractionStats]:
    """Vectors for every job, from the cache where possible; new ones are cached per batch."""
    unique = list({job.key: job for job in jobs}.values())
    vectors = cache.get_many(job.key for job in unique)
    missing = [job for job in unique if job.key not in vectors]
    started = time.perf_counter()
    quiet = not progress or not missing
    with tqdm(total=len(missing), desc=desc, unit="img", disable=quiet) as bar:
        for batch in _batches(missing, batch_size):
            images = [job.load() for job in batch]
            embedded = embedder.embed(images, batch_size=batch_size)  # (B, D)
            fresh = {job.key: row for job, row in zip(batch, embedded, strict=True)}
            cache.put_many(fresh)
            vectors.update(fresh)
            bar.update(len(batch))
    stats = ExtractionStats(
        cached=len(unique) - len(missing),
        extracted=len(missing),
        seconds=time.perf_counter() - started,
    )
    return vectors, stats


def _batches(jobs: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]
