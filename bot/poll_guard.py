"""Only one process may poll: a second `snapfind bot` in polling mode says so and stops.

With Redis, the poller holds `snapfind:<bot id>:poller` (`SET NX` with a TTL it refreshes
while polling; a crashed poller's lock lapses within `LOCK_TTL` seconds), so a second process
is refused before it asks Telegram for anything. Without Redis, Telegram answers the second
poller's getUpdates with 409 Conflict; PTB would log and retry it forever, so the guard turns
it into one clear error and stops the bot. So does a token revoked while the bot polls (PTB's
polling loop gives up on it silently). Webhook replicas need no guard (`NoGuard`).
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram.error import Conflict, InvalidToken, TelegramError

from retrieval.errors import ConfigError, SnapfindError

log = logging.getLogger(__name__)

LOCK_TTL = 30  # seconds a poller's lock outlives its last refresh
REFRESH_EVERY = LOCK_TTL / 3

# Refresh or release the lock only while it is still ours.
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

ONLY_ONE = (
    "only one process may poll Telegram for @{bot}: stop the other one, or run several "
    "replicas in webhook mode (SNAPFIND_BOT_MODE=webhook)"
)


POLLING_TASK = "Updater:start_polling:polling_task"  # PTB's name for its polling loop
REVOKED = (
    "Telegram stopped accepting SNAPFIND_BOT_TOKEN while the bot ran ({error}): it was "
    "revoked or changed in @BotFather; copy the new one (/mybots → API Token) and restart"
)


class AlreadyPolling(SnapfindError):
    """Another process polls (or Telegram has a webhook set) for this bot."""


class NoGuard:
    """Webhook mode: any number of replicas may take updates."""

    async def acquire(self) -> None:
        return None

    def on_poll_error(self, error: TelegramError) -> None:
        log.error("polling failed: %s", error)

    def watch(self, started: set["asyncio.Task[object]"]) -> None:
        return None

    def check(self) -> None:
        return None

    async def release(self) -> None:
        return None


class PollGuard(NoGuard):
    """Polling mode: a Redis lock when there is Redis, and Telegram's 409 in any case."""

    def __init__(self, bot: str, stop: asyncio.Event, redis: Redis | None, key: str) -> None:
        self.bot = bot
        self.stop = stop
        self.redis = redis
        self.key = key
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.conflict: str | None = None
        self.lost: SnapfindError | None = None  # why polling ended by itself
        self._refresher: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        """Take the poller lock; raises `AlreadyPolling` if another process holds it."""
        if self.redis is None:
            return
        try:
            taken = await self.redis.set(self.key, self.holder, nx=True, ex=LOCK_TTL)
            holder = None if taken else await self.redis.get(self.key)
        except (RedisError, OSError) as error:
            log.warning("poller lock unavailable (%s); relying on Telegram's 409", error)
            return
        if not taken:
            who = holder.decode(errors="replace") if holder else "another process"
            raise AlreadyPolling(ONLY_ONE.format(bot=self.bot) + f" (held by {who})")
        self._refresher = asyncio.create_task(self._keep())

    def on_poll_error(self, error: TelegramError) -> None:
        """PTB's polling error callback: 409 Conflict stops the bot with one clear line."""
        if not isinstance(error, Conflict):
            super().on_poll_error(error)
            return
        if self.conflict is None:
            self.conflict = f"Telegram refused getUpdates ({error.message})"
            log.error("%s: %s", self.conflict, ONLY_ONE.format(bot=self.bot))
        self.stop.set()

    def watch(self, started: set["asyncio.Task[object]"]) -> None:
        """Once polling runs (`started`: the tasks starting it made): stop the bot when PTB's
        polling loop gives up by itself. It does only on a token Telegram no longer accepts,
        and would leave a bot that answers nothing, its heartbeat beating on."""
        loop = next((t for t in started if t.get_name() == POLLING_TASK), None)
        if loop is None:
            log.warning("PTB's polling task not found: a revoked token will not stop the bot")
            return
        loop.add_done_callback(self._polling_ended)

    def _polling_ended(self, loop: "asyncio.Task[None]") -> None:
        error = None if self.stop.is_set() or loop.cancelled() else loop.exception()
        if error is None:  # stopped by us
            return
        if isinstance(error, InvalidToken):
            self.lost = ConfigError(REVOKED.format(error=error))
        else:
            self.lost = SnapfindError(f"polling Telegram for updates stopped: {error!r}")
        log.error("%s", self.lost)
        self.stop.set()

    def check(self) -> None:
        """After serving: raise `AlreadyPolling` if polling stopped for a conflict, or why
        it ended by itself (`ConfigError` for a token Telegram stopped accepting)."""
        if self.conflict is not None:
            raise AlreadyPolling(f"{self.conflict}: " + ONLY_ONE.format(bot=self.bot))
        if self.lost is not None:
            raise self.lost

    async def release(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.eval(_RELEASE, 1, self.key, self.holder)

    async def _keep(self) -> None:
        """Refresh the lock; if another process has it now, stop polling."""
        assert self.redis is not None
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            try:
                kept = await self.redis.eval(_REFRESH, 1, self.key, self.holder, LOCK_TTL)
                # lapsed (Redis restarted, say): take it again unless another process has
                kept = kept or await self.redis.set(self.key, self.holder, nx=True, ex=LOCK_TTL)
            except (RedisError, OSError):
                continue  # Redis is away: keep polling, Telegram's 409 still guards
            if not kept:
                self.conflict = "another process took the poller lock"
                log.error("%s: %s", self.conflict, ONLY_ONE.format(bot=self.bot))
                self.stop.set()
                return
