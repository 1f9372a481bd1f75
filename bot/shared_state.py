"""The bot's state that replicas must share: query states, rate limits, updates already seen,
buttons being answered.

`SharedState` is the one interface the handlers use; `LocalState` keeps everything in this
process (the default: one bot process), `bot/redis_state.py` keeps it in Redis so any replica
can answer a button pressed under another replica's reply. All methods are coroutines, so
the handlers do not care which one they have.
"""

from collections import OrderedDict
from typing import Protocol

from bot.buttons import QueryState
from bot.query_cache import QueryCache
from bot.rate_limit import RateLimiter

SEEN_UPDATES = 10_000  # update ids remembered in-process: far more than Telegram retries span


class SharedState(Protocol):
    """Query states (for buttons and repeated photos), per-user rate limits, seen updates,
    buttons being answered."""

    async def get_query(self, key: str) -> QueryState | None:
        """The state cached under `key`, or None (never cached, expired, or unreachable)."""
        ...

    async def put_query(self, key: str, state: QueryState) -> None:
        """Cache `state` under `key` for the cache's time to live."""
        ...

    async def acquire(self, user_id: int) -> float:
        """Count one search; 0 if allowed, else the seconds until one would be."""
        ...

    async def first_delivery(self, update_id: int) -> bool:
        """True the first time `update_id` is seen (by any replica sharing this state)."""
        ...

    async def claim_press(self, tap: str) -> bool:
        """True if no one (no replica sharing this state) is answering `tap` now; it is then
        this caller's until `release_press` (in Redis, until its claim lapses at the latest)."""
        ...

    async def release_press(self, tap: str) -> None:
        """Give back this caller's claim on `tap` (never another's): the button may be
        pressed again."""
        ...

    async def close(self) -> None:
        """Release connections (nothing to do in-process)."""
        ...


class SeenUpdates:
    """The most recent `size` update ids, for dropping an update Telegram delivers twice."""

    def __init__(self, size: int = SEEN_UPDATES) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def first(self, update_id: int) -> bool:
        if update_id in self._ids:
            return False
        self._ids[update_id] = None
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class LocalState:
    """`SharedState` in this process's memory: bounded, and forgotten on restart."""

    def __init__(self, cache: QueryCache[QueryState], limiter: RateLimiter) -> None:
        self.cache = cache
        self.limiter = limiter
        self.seen = SeenUpdates()
        self.presses: set[str] = set()  # taps being answered (a crash forgets them with the rest)

    async def get_query(self, key: str) -> QueryState | None:
        return self.cache.get(key)

    async def put_query(self, key: str, state: QueryState) -> None:
        self.cache.put(key, state)

    async def acquire(self, user_id: int) -> float:
        return self.limiter.acquire(user_id)

    async def first_delivery(self, update_id: int) -> bool:
        return self.seen.first(update_id)

    async def claim_press(self, tap: str) -> bool:
        if tap in self.presses:
            return False
        self.presses.add(tap)
        return True

    async def release_press(self, tap: str) -> None:
        self.presses.discard(tap)

    async def close(self) -> None:
        return None
