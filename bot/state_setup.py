"""Which shared state a bot gets: this process's memory, or Redis when SNAPFIND_REDIS_URL is set.

Replicas in webhook mode need Redis to answer each other's buttons and to drop an update
delivered twice; a single process does without it.
"""

import asyncio

from bot.poll_guard import NoGuard, PollGuard
from bot.query_cache import QueryCache
from bot.rate_limit import RateLimiter
from bot.redis_state import RedisState
from bot.settings import BotSettings
from bot.shared_state import LocalState, SharedState


def open_state(settings: BotSettings, bot_id: str) -> SharedState:
    """The query cache and rate limiter, sized from the settings; in Redis if configured."""
    local = LocalState(
        QueryCache(settings.cache_size, settings.cache_ttl),
        RateLimiter(settings.rate_limit, settings.rate_window),
    )
    if settings.redis_url is None:
        return local
    return RedisState(settings.redis_url.get_secret_value(), bot_id, local)


def poll_guard(settings: BotSettings, state: SharedState, bot: str, stop: asyncio.Event) -> NoGuard:
    """Webhook replicas run unguarded; a poller takes the Redis lock if there is Redis."""
    if settings.bot_mode != "polling":
        return NoGuard()
    if isinstance(state, RedisState):
        return PollGuard(bot, stop, state.redis, state.prefix + "poller")
    return PollGuard(bot, stop, None, "")
