"""Retry Bot API calls that failed for a passing reason, so a reply survives a hiccup or an
outage of up to `PATIENCE` seconds.

Plugged into PTB as its "rate limiter" (the hook that wraps every request except
getUpdates, which the updater already retries); file downloads, which PTB sends past that
hook, go through `retried`. A 429 waits `retry_after` then retries; timeouts and 5xx/network
errors retry with exponential backoff (at most `MAX_BACKOFF` between tries); either only
until `PATIENCE` seconds after the first try. A 400 (our mistake) or 403 (blocked by the
user) never does. A call that timed out after Telegram received it can be delivered twice;
for a shopping bot a rare duplicate beats a lost answer.
"""

import asyncio
import datetime as dtm
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]
T = TypeVar("T")

PATIENCE = 30.0  # seconds a call is retried through an outage (Telegram's 502s last seconds)
MAX_BACKOFF = 5.0  # seconds between two tries at most, so a call goes through soon after


class RetryingRequests(BaseRateLimiter[None]):
    """At most `attempts` tries per call, none later than `patience` seconds after the first;
    never waits longer than `max_wait` seconds at once."""

    def __init__(
        self,
        attempts: int = 12,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        patience: float = PATIENCE,
    ) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.patience = patience

    async def initialize(self) -> None:
        """Nothing to set up: retries need no shared state."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Result:
        return await self.run(lambda: callback(*args, **kwargs), endpoint)

    async def run(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """`call()`, tried again while it fails for a passing reason.

        The first failure of a call is logged (a warning); the further ones of an outage are
        not, so many calls in flight through one outage log a line each, not one per try.
        """
        attempt, started = 1, time.monotonic()
        while True:
            try:
                result = await call()
            except RetryAfter as error:
                with warnings.catch_warnings():  # int today, timedelta later: both handled
                    warnings.simplefilter("ignore", PTBDeprecationWarning)
                    wait = _seconds(error.retry_after)
                if wait > self.max_wait or self._spent(attempt, started, wait):
                    raise
            except BadRequest:
                raise
            except NetworkError as error:  # includes TimedOut and 5xx answers
                wait = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
                if self._spent(attempt, started, wait):
                    raise
                if attempt == 1:
                    log.warning(
                        "%s failed (%s); retrying for up to %.0f s", what, error, self.patience
                    )
            else:
                if attempt > 1:
                    log.info("%s went through at try %d", what, attempt)
                return result
            await asyncio.sleep(wait)
            attempt += 1

    def _spent(self, attempt: int, started: float, wait: float) -> bool:
        """Whether another try, `wait` seconds from now, is one too many or too late."""
        return attempt >= self.attempts or time.monotonic() + wait - started > self.patience


async def retried(bot: Bot, call: Callable[[], Awaitable[T]], what: str) -> T:
    """`call()` under the bot's retry policy: for requests PTB sends past its rate limiter
    (a file download), so they survive the same hiccups as every other call."""
    policy = getattr(bot, "rate_limiter", None)
    if isinstance(policy, RetryingRequests):
        return await policy.run(call, what)
    return await call()


def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)
