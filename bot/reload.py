"""Hot reload of the index: on /reload, on SIGHUP, or when the published manifest changes.

The swap itself is the core's (`SearchService.reload`, atomic; queries in flight finish on
the old index). Opening a release reads files, so it runs in a thread; a lock keeps two
triggers from reloading at once.
"""

import asyncio
import logging
from pathlib import Path

from retrieval.errors import SnapfindError
from retrieval.index_store import CatalogIndex, resolve_release
from retrieval.manifest import MANIFEST
from retrieval.search import SearchService

log = logging.getLogger(__name__)

Stamp = tuple[str, int, int] | None


class IndexReloader:
    """Reloads `service` from its index directory and remembers which release it serves."""

    def __init__(self, service: SearchService) -> None:
        self._service = service
        self._lock = asyncio.Lock()
        self._served: Stamp = _stamp(service.index_dir)

    async def reload(self) -> CatalogIndex:
        """Open the current release and swap it in; raises `SnapfindError` if it cannot.

        Any failure to open a release (FAISS and SQLite raise their own types) becomes one
        `SnapfindError` line, so an admin's /reload hears why and the watcher keeps running.
        """
        async with self._lock:
            stamp = await asyncio.to_thread(_stamp, self._service.index_dir)
            try:
                index = await asyncio.to_thread(self._service.reload)
            except SnapfindError:
                raise
            except Exception as error:
                raise SnapfindError(
                    f"the new index could not be opened: {type(error).__name__}: {error}"
                ) from error
            self._served = stamp
        log.info("index reloaded: %s, %d products", index.release, len(index))
        return index

    async def watch(self, interval: float) -> None:
        """Reload whenever a new release is published; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            stamp = await asyncio.to_thread(_stamp, self._service.index_dir)
            if stamp is None or stamp == self._served or self._lock.locked():
                continue
            try:
                await self.reload()
            except SnapfindError as error:
                self._served = stamp  # do not retry a broken release every interval
                log.error("new index release not loaded, still serving the old one: %s", error)


def _stamp(index_dir: Path | None) -> Stamp:
    """Identity of the release `index_dir` points at: its path and manifest inode and mtime."""
    if index_dir is None:
        return None
    try:
        release = resolve_release(index_dir)
        info = (release / MANIFEST).stat()
    except (SnapfindError, OSError):
        return None
    return (str(release), info.st_ino, info.st_mtime_ns)
