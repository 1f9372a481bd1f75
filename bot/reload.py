"""Hot reload of the index: on /reload, on SIGHUP, or when a new release is published.

Which release is served, and the atomic swap, are retrieval's (`Retrieval.reload` and
`reload_if_changed`; queries in flight finish on the old index). Opening a release reads
files, so it runs in a thread; a lock keeps two triggers from reloading at once.
"""

import asyncio
import logging

from retrieval.errors import SnapfindError
from retrieval.query_api import Retrieval
from retrieval.results import CatalogInfo

log = logging.getLogger(__name__)


class IndexReloader:
    """Reloads `service` on demand, or whenever it reports a newly published release."""

    def __init__(self, service: Retrieval) -> None:
        self._service = service
        self._lock = asyncio.Lock()

    async def reload(self) -> CatalogInfo:
        """Open the current release and swap it in; raises `SnapfindError` if it cannot."""
        async with self._lock:
            info = await asyncio.to_thread(self._service.reload)
        _log_loaded(info)
        return info

    async def watch(self, interval: float) -> None:
        """Reload whenever a new release is published; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self._lock.locked():
                continue
            try:
                async with self._lock:
                    info = await asyncio.to_thread(self._service.reload_if_changed)
            except SnapfindError as error:
                log.error("new index release not loaded, still serving the old one: %s", error)
                continue
            except Exception:  # a watcher that dies would never load a good release again
                log.exception("checking for a new index release failed; still watching")
                continue
            if info is not None:
                _log_loaded(info)


def _log_loaded(info: CatalogInfo) -> None:
    log.info("index reloaded: %s, %d products", info.release, info.products)
