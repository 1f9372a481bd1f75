"""Vectors already computed, by (extractor fingerprint, image content hash).

Written batch by batch as a build runs, so a crash or Ctrl-C loses at most one batch and the
next build resumes; read back so unchanged images are never embedded twice.
"""

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from retrieval.errors import SnapfindError
from retrieval.extractor import Fingerprint

# a row holds a vector of this cache's dimension only if its value is a blob of D float32s; any
# other row (damaged, or written by something else) counts as missing, so it is embedded anew
_WHOLE = "typeof(v) = 'blob' AND length(v) = ?"


class CacheError(SnapfindError):
    """The cache file cannot be read or written: a full disk, a damaged or read-only file."""


@contextmanager
def _reported(path: Path) -> Iterator[None]:
    """SQLite's errors as one line that names the file and the way out, not a traceback."""
    try:
        yield
    except sqlite3.DatabaseError as error:  # OperationalError (full, read-only) included
        raise CacheError(_problem(path, error)) from None


def _problem(path: Path, error: sqlite3.DatabaseError) -> str:
    if "full" in str(error):
        return f"vector cache {path}: the disk is full; free some space and build again"
    if not isinstance(error, sqlite3.OperationalError):  # malformed, not a database
        return (
            f"vector cache {path} is damaged ({error}): delete it and build again "
            "(it holds only vectors; its images are embedded anew)"
        )
    return f"vector cache {path}: {error}"


class VectorCache:
    """One SQLite file per fingerprint: content_hash → float32 vector bytes."""

    def __init__(self, cache_dir: Path, fingerprint: Fingerprint) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.dim = fingerprint.dim
        self.path = cache_dir / f"{fingerprint.key()}.sqlite"
        with _reported(self.path):
            self._db = sqlite3.connect(self.path)
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (hash TEXT PRIMARY KEY, v BLOB)")

    def get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among `hashes` (rows of another size count as missing)."""
        with _reported(self.path):
            found: dict[str, np.ndarray] = {}
            wanted = list(dict.fromkeys(hashes))
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._db.execute(
                    f"SELECT hash, v FROM vectors WHERE {_WHOLE} AND hash IN "
                    f"({','.join('?' * len(chunk))})",
                    [self.dim * 4, *chunk],
                )
                found.update((d, np.frombuffer(blob, dtype=np.float32)) for d, blob in rows)
            return found

    def hashes_among(self, hashes: Iterable[str]) -> set[str]:
        """Which of `hashes` have a cached vector (without reading the vectors)."""
        with _reported(self.path):
            wanted = list(dict.fromkeys(hashes))
            found: set[str] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._db.execute(
                    f"SELECT hash FROM vectors WHERE {_WHOLE} AND hash IN "
                    f"({','.join('?' * len(chunk))})",
                    [self.dim * 4, *chunk],
                )
                found.update(digest for (digest,) in rows)
            return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors and commit, so they survive an interrupted build."""
        with _reported(self.path):
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [
                    (digest, np.asarray(v, dtype=np.float32).tobytes())
                    for digest, v in items.items()
                ],
            )
            self._db.commit()

    def keep_only(self, hashes: set[str]) -> int:
        """Drop vectors of images no longer in the catalog; returns how many went."""
        with _reported(self.path):
            stale = [h for (h,) in self._db.execute("SELECT hash FROM vectors") if h not in hashes]
            self._db.executemany("DELETE FROM vectors WHERE hash = ?", [(h,) for h in stale])
            self._db.commit()
            return len(stale)

    def close(self) -> None:
        self._db.close()
