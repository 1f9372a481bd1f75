"""What /stats reports: queries served, cache hits, refusals, latency percentiles, stage times.

Latencies are kept in a bounded window (the most recent `window` searches), so the
percentiles describe the bot as it is now and memory stays flat.
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Stats:
    """Counters and recent timings; touched only from the event loop."""

    window: int = 1000
    queries: int = 0  # photo searches answered with results
    cache_hits: int = 0  # of which answered from a cached vector
    button_presses: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # error kind -> count
    _latencies: deque[float] = field(init=False)
    _stages: dict[str, deque[float]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._latencies = deque(maxlen=self.window)

    def record_query(self, seconds: float, stages: dict[str, float], *, cached: bool) -> None:
        """One photo answered end to end in `seconds`, with per-stage seconds."""
        self.queries += 1
        self.cache_hits += cached
        self._latencies.append(seconds)
        for stage, value in stages.items():
            self._stages.setdefault(stage, deque(maxlen=self.window)).append(value)

    def record_refusal(self, kind: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1

    def latency(self, percentile: float) -> float | None:
        """Seconds at `percentile` (0-100) of recent photo→album latencies, None if none yet."""
        if not self._latencies:
            return None
        return float(np.percentile(np.fromiter(self._latencies, float), percentile))

    def stage_means(self) -> dict[str, float]:
        """Mean seconds per stage over the recent window."""
        return {stage: float(np.mean(values)) for stage, values in self._stages.items() if values}
