"""A heartbeat for container health checks that costs no second TensorFlow process.

Every interval the serving bot sends one tiny probe through the inference worker (a search
from a stored vector: worker thread alive, index answering) and, when it returns, touches a
file. `snapfind health --heartbeat` only looks at that file's age.
"""

import asyncio
import logging
import time
from pathlib import Path

from bot.errors import Busy
from bot.resources import BotResources

log = logging.getLogger(__name__)


def touch(path: Path) -> None:
    """Write the current time atomically (a reader never sees an empty file)."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(f"{time.time():.0f}\n", encoding="utf-8")
    partial.replace(path)


async def beat(res: BotResources, path: Path, interval: float) -> None:
    """Probe and touch every `interval` seconds until cancelled; a busy queue skips a beat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            if await res.worker.run(res.service.probe):
                await asyncio.to_thread(touch, path)
        except Busy:
            log.info("health probe skipped: the inference queue is full")
        await asyncio.sleep(interval)


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the bot last beat, or None if it never did."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
