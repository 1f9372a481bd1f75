"""Vectors → FAISS index file, in chunks: never more than the index plus one chunk in memory.

Stacking a catalog's vectors into one matrix before adding them holds the vectors twice (three
times with the cache's copy): 1M × 1280 floats is 4.9 GB a copy. Here the rows come from a
re-readable source in vector order, chunk by chunk: one pass draws a random training sample
(as many rows as FAISS would keep anyway; a large catalog's codes then train on a part of it,
read again), a second adds the rows to the trained index.
"""

import errno
import re
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass
from pathlib import Path

import faiss
import numpy as np

from index.choice import IndexChoice
from index.list_partition import cut_lists
from index.probe_tuning import ProbeCheck
from index.vector_cache import CacheError, VectorCache
from retrieval.extractor import Fingerprint
from retrieval.vector_chunks import CHUNK, Chunks, rows_at

TRAIN_ROWS = 100_000  # at least (k-means up to 2^12 lists), and the codes' at most (PQ's too)
TRAIN_PER_LIST = 16  # k-means rows a list, past that: 1M × 1280 into 16,384 lists trains on 262k
SQ_TRAIN_ROWS = 20_000  # a scalar quantizer only learns each dimension's range
KMEANS_ITERATIONS = 10  # faiss's 25 cost 1M × 1280 builds ~8 min more; lists need no finer


def new_index(dim: int, key: str) -> faiss.Index:
    """An empty inner-product index for `key`, its k-means (if any) set to this module's
    iterations: every writer and benchmark builds through here."""
    index = faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.cp.niter = KMEANS_ITERATIONS
        ivf.cp.min_points_per_centroid = TRAIN_PER_LIST  # (FAISS warns under its 39)
    return index


@dataclass(frozen=True)
class Written:
    """What a writer wrote: the search settings in the file, measured where they were tuned."""

    nprobe: int  # 0 for indexes without lists
    recall: float | None = None  # recall@5 of catalog vectors as queries (IVF only)


def write_index(
    path: Path, key: str, count: int, chunks: Chunks, search_params: str = "", seed: int = 0
) -> Written:
    """Train `key` on a sample of the `count` rows `chunks()` yields, add them all, write it.

    `search_params` ("efSearch=128", "nprobe=64") are set before writing: the file keeps them.
    An inverted file's nprobe then rises until it finds the catalog's own neighbours
    (`index.probe_tuning`).
    """
    first = next(iter(chunks()))
    index = new_index(first.shape[1], key)
    check = None
    if not index.is_trained:
        rows = training_rows(index, key)
        picks = _picks(count, min(count, rows), seed)
        sample = rows_at(chunks, picks)  # (S, D)
        if faiss.try_extract_index_ivf(index) is not None:
            check = ProbeCheck.from_sample(sample, picks, seed)
        if train_lists(index, sample):  # the codes train on fewer rows, read again: one pass
            del sample
            sample = rows_at(chunks, picks[:TRAIN_ROWS])
        index.train(sample)
        del sample
    reserve(index, count)
    reserve_lists(index, chunks)
    added = 0
    for chunk in chunks():
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        index.add(chunk)
        if check is not None:
            check.truth.update(added, chunk)
        added += len(chunk)
    if added != count:
        raise ValueError(f"expected {count} vectors, the source gave {added}")
    if search_params:
        faiss.ParameterSpace().set_index_parameters(index, search_params)
    written = Written(0) if check is None else Written(*astuple(check.tune(index)))
    save_index(index, path)
    return written


def save_index(index: faiss.Index, path: Path) -> None:
    """`faiss.write_index`, its C++ failure (a full disk) raised as the `OSError` it is, so the
    command line says one line (`cannot use PATH: No space left on device`), not a traceback."""
    try:
        faiss.write_index(index, str(path))
    except RuntimeError as error:
        found = re.search(r"\(([^()]+)\)\s*$", str(error))  # faiss ends with "(strerror)"
        reason = found.group(1) if found else "FAISS could not write the index"
        raise OSError(errno.EIO, reason, str(path)) from None


def reserve(index: faiss.Index, count: int) -> None:
    """Size the code storage of `index` (and of a refine's two parts, an HNSW's codes) for
    `count` rows up front: grown chunk by chunk, a vector doubles, briefly holding 1.5× its
    codes (a 1M × 1280 refine: 2.4 GiB more at the last doubling)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        reserve(index.base_index, count)
        reserve(index.refine_index, count)
    elif isinstance(index, faiss.IndexHNSW):
        reserve(index.storage, count)
    elif isinstance(index, faiss.IndexFlatCodes):
        index.codes.resize(count * index.code_size)  # reserve: capacity stays after the resize
        index.codes.resize(0)


def reserve_lists(index: faiss.Index, chunks: Chunks) -> None:
    """Size each inverted list of an IVF `index` (or a refine's IVF base) for the rows that will
    go to it, counted in one pass that assigns the chunks: filled chunk by chunk, each list grows
    by doubling and holds up to twice its codes (1M × 1280 IVF2048,SQ8: peak 1.5× the index)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.base_index)
    if not isinstance(index, faiss.IndexIVF):  # (a pre-transform would change what is assigned)
        return
    lists = faiss.downcast_InvertedLists(index.invlists)
    if not isinstance(lists, faiss.ArrayInvertedLists):
        return
    counts = np.zeros(index.nlist, dtype=np.int64)
    for chunk in chunks():
        _, assigned = index.quantizer.search(np.ascontiguousarray(chunk, dtype=np.float32), 1)
        counts += np.bincount(assigned[:, 0][assigned[:, 0] >= 0], minlength=index.nlist)
    for list_no in np.flatnonzero(counts).tolist():
        lists.resize(list_no, int(counts[list_no]))  # reserve: capacity stays after the resize
        lists.resize(list_no, 0)


def train_lists(index: faiss.Index, sample: np.ndarray) -> bool:
    """Cut an inverted file's lists from `sample` (rows in random order, as `_picks` draws
    them: `index.list_partition`); True when its codes then need fewer rows (`TRAIN_ROWS`).

    FAISS's own `train` also computes every row's residual for the codes: at 1M × 1280 a
    second 1.25 GiB beside the 262k-row sample, and the streamed build peaked at 2.2x its
    index (docs/scale.md, ninth round). On True the caller frees the sample and trains the
    codes on `TRAIN_ROWS` rows; either way `index.train` leaves the trained quantizer as it
    is. An index with a pre-transform, or lists already given, trains the rest itself (False)."""
    ivf = faiss.try_extract_index_ivf(index)
    transformed = isinstance(faiss.downcast_index(index), faiss.IndexPreTransform)
    if ivf is None or transformed or ivf.quantizer.ntotal == ivf.nlist:
        return False
    cut_lists(ivf, sample)
    return len(sample) > TRAIN_ROWS


def training_rows(index: faiss.Index, key: str) -> int:
    """How many rows `index` (made from `key`) trains on: its lists' k-means (`TRAIN_PER_LIST`
    each, at least `TRAIN_ROWS`), PQ codebooks, or only a scalar quantizer's ranges."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return max(TRAIN_ROWS, TRAIN_PER_LIST * ivf.nlist)
    return TRAIN_ROWS if "PQ" in key else SQ_TRAIN_ROWS


def _picks(count: int, size: int, seed: int) -> np.ndarray:
    """(size,) row numbers drawn uniformly without replacement, in random order: every prefix
    is itself a uniform draw, so the codes' rows and the lists' screen
    (`index.list_partition`) are slices of the sample, not copies of it."""
    return np.random.default_rng(seed).choice(count, size, replace=False)


def write_from_cache(
    path: Path,
    choice: IndexChoice,
    cache_dir: Path,
    fingerprint: Fingerprint,
    hashes: list[str],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Written:
    """Write the index of the cached vectors of `hashes` (vector order), streamed from the cache,
    each chunk through `transform` (the tuned head: the cache holds the network's vectors)."""
    cache = VectorCache(cache_dir, fingerprint)
    try:
        chunks = cached_chunks(cache.get_many, hashes, transform)
        return write_index(path, choice.key, len(hashes), chunks, choice.search_params)
    finally:
        cache.close()


def cached_vectors(
    cache_dir: Path,
    fingerprint: Fingerprint,
    hashes: list[str],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """The cached vectors of `hashes` in that order, transformed, a chunk at a time: for a pass
    over every picture besides the writers (the region hubness), which must not hold them all."""
    cache = VectorCache(cache_dir, fingerprint)
    try:
        yield from cached_chunks(cache.get_many, hashes, transform)()
    finally:
        cache.close()


def cached_chunks(
    get_many: Callable[[list[str]], dict[str, np.ndarray]],
    hashes: list[str],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Chunks:
    """A re-readable chunk source of the vectors of `hashes`, in that order, transformed.

    A NaN or infinite cached vector (a damaged cache) is refused: FAISS would hide its product
    from every search, or fail the build with a C++ trace; the threshold would become NaN."""

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(hashes), CHUNK):
            part = hashes[start : start + CHUNK]
            found = get_many(part)
            missing = [h for h in part if h not in found]
            if missing:
                raise ValueError(
                    f"{len(missing)} vectors missing from the cache, e.g. {missing[0]}"
                )
            chunk = np.stack([found[h] for h in part]).astype(np.float32, copy=False)  # (c, D)
            del found  # its blobs are a second copy of the chunk while faiss adds it
            finite = np.isfinite(chunk).all(axis=1)  # (c,)
            if not finite.all():
                raise CacheError(
                    f"the vector cache holds a damaged vector (NaN or infinite) for "
                    f"{part[int(np.argmin(finite))]}; build again with --full to embed anew"
                )
            yield chunk if transform is None else transform(chunk)

    return chunks
