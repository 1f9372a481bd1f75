"""Vectors as a re-readable stream of chunks: how a catalog of any size is read without
holding it. A source is a function; each call yields (c, D) float32 rows, always in the same
order (the vector cache read in vector order, or a matrix already in memory)."""

from collections.abc import Callable, Iterable, Iterator

import numpy as np

CHUNK = 16_384  # rows per chunk: 80 MiB of 1280-d float32
Chunks = Callable[[], Iterable[np.ndarray]]


def matrix_chunks(matrix: np.ndarray) -> Chunks:
    """A chunk source over an (N, D) matrix already in memory (views, no copies)."""

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(matrix), CHUNK):
            yield matrix[start : start + CHUNK]

    return chunks


def rows_at(chunks: Chunks, positions: np.ndarray) -> np.ndarray:
    """(len(positions), D) float32 rows at `positions`, in their order, in one pass over the
    chunks, written into one matrix as they come (joining the pieces at the end held them
    twice: 2.5 GiB for a million-row catalog's 262k training rows)."""
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    rows: np.ndarray | None = None
    start = 0
    for chunk in chunks():
        if rows is None:
            rows = np.empty((len(positions), chunk.shape[1]), np.float32)
        lo, hi = np.searchsorted(ordered, [start, start + len(chunk)])
        rows[order[lo:hi]] = chunk[ordered[lo:hi] - start]
        start += len(chunk)
        if hi == len(positions):
            break
    if rows is None or hi < len(positions):
        raise ValueError(f"rows up to {positions.max()} asked of a source of {start}")
    return rows
