"""Per-user sliding-window rate limit: at most `limit` searches in any `window` seconds."""

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Used only from the event loop. Users idle for a whole window are forgotten (swept once
    per window, so memory follows the active users, not everyone ever seen)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._next_sweep = clock() + window

    def acquire(self, user_id: int) -> float:
        """Count one search; returns 0 if allowed, else the seconds until one would be."""
        now = self._clock()
        if now >= self._next_sweep:
            self._forget_idle(now)
            self._next_sweep = now + self.window
        recent = self._recent.setdefault(user_id, deque())
        while recent and now - recent[0] >= self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            return self.window - (now - recent[0])
        recent.append(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        idle = [
            u for u, times in self._recent.items() if not times or now - times[-1] >= self.window
        ]
        for user_id in idle:
            del self._recent[user_id]
