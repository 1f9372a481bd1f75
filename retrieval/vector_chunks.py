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
    """(len(positions), D) float32 rows at sorted `positions`, in one pass over the chunks."""
    picked: list[np.ndarray] = []
    start = 0
    for chunk in chunks():
        lo, hi = np.searchsorted(positions, [start, start + len(chunk)])
        picked.append(np.asarray(chunk[positions[lo:hi] - start], dtype=np.float32))
        start += len(chunk)
        if hi == len(positions):
            break
    return np.concatenate(picked)
