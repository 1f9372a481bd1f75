"""Retry Bot API calls that failed for a passing reason, so a reply survives a hiccup.

Plugged into PTB as its "rate limiter" (the hook that wraps every request except
getUpdates, which the updater already retries): 429 waits `retry_after` then retries;
timeouts and 5xx/network errors retry with exponential backoff; a 400 (our mistake) or 403
(blocked by the user) never does. A call that timed out after Telegram received it can be
delivered twice; for a shopping bot a rare duplicate beats a lost answer.
"""

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]


class RetryingRequests(BaseRateLimiter[None]):
    """At most `attempts` tries per call; never waits longer than `max_wait` seconds at once."""

    def __init__(self, attempts: int = 4, backoff: float = 0.5, max_wait: float = 30.0) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait

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
        attempt = 1
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                with warnings.catch_warnings():  # int today, timedelta later: both handled
                    warnings.simplefilter("ignore", PTBDeprecationWarning)
                    wait = _seconds(error.retry_after)
                if attempt >= self.attempts or wait > self.max_wait:
                    raise
            except BadRequest:
                raise
            except NetworkError as error:  # includes TimedOut and 5xx answers
                if attempt >= self.attempts:
                    raise
                wait = self.backoff * 2 ** (attempt - 1)
                log.warning("%s failed (%s); retry %d in %.1f s", endpoint, error, attempt, wait)
            await asyncio.sleep(wait)
            attempt += 1


def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)
