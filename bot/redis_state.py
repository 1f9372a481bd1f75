"""`SharedState` in Redis, so every bot replica sees the same query states and rate limits.

Layout (all under `snapfind:<bot id>:`, every key with a TTL):
- `q:<query key>`  a hash: `vector` (raw bytes), `dtype` (numpy's, e.g. `<f4`), `dim`,
  `labels`, `exclude` and `owners` (JSON lists), and for a room photo `object_labels` (JSON)
  with `objects` (their vectors' raw bytes, one after another, same dtype and dim);
  TTL = the cache TTL. Never pickled.
- `r:<user id>`    a sorted set of search times (sliding window, one Lua script); TTL = window.
- `u:<update id>`  `SET NX EX`: the first replica to see an update answers it.
- `p:<tap>`        `SET NX EX` of a random token while a button press is answered (a double
  tap's second press, on any replica, is dropped); deleted only by its holder (one Lua
  script), TTL = `PRESS_TTL`, so a replica that crashed mid-answer frees the button.
Size is bounded by the TTLs plus Redis's own `maxmemory` with `allkeys-lru` (deploy/compose.yaml).

Redis going away must not take the bot down: every call falls back to a `LocalState` in this
process (photos are still answered, their buttons work on this replica; buttons of results
cached in Redis say the search has expired), and Redis is tried again `RETRY_AFTER` seconds
after a failure, so the bot uses it again as soon as it is back, without a restart.
"""

import json
import logging
import secrets
import time
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import urlparse

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from bot.buttons import PhotoObject, QueryState
from bot.shared_state import LocalState

log = logging.getLogger(__name__)

RETRY_AFTER = 1.0  # seconds a failed Redis is left alone before the next try
TIMEOUT = 0.5  # seconds a Redis call may take before the bot answers without it
UPDATE_TTL = 3600  # seconds an update id is remembered (Telegram retries within minutes)
# seconds a press's claim lasts at most: beyond an answer's album upload (20 s write timeout)
# and a retry, yet a replica that crashed mid-answer frees the button within a minute
PRESS_TTL = 60
VECTOR_DTYPES = frozenset({"<f2", "<f4", "<f8"})  # what a stored vector may be decoded as

# Sliding-window limit, atomically: drop old searches, count, admit or say how long to wait.
# A key that is no sorted set (written by hand, or by another program) is dropped first.
_ACQUIRE = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then redis.call('DEL', KEYS[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(window - (now - tonumber(oldest[2])))
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return '0'
"""

# Delete a press's claim only while it is still ours (it may have lapsed and been re-taken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

T = TypeVar("T")
DOWN = object()  # what `RedisState._try` returns when Redis could not answer


def encode_state(state: QueryState) -> dict[str, bytes | str | int]:
    """A query state as Redis hash fields: the vector's raw bytes with its dtype and dim."""
    vector = np.ascontiguousarray(state.vector)
    little = vector.astype(vector.dtype.newbyteorder("<"), copy=False)  # (D,), little-endian
    fields: dict[str, bytes | str | int] = {
        "vector": little.tobytes(),
        "dtype": little.dtype.str,
        "dim": int(little.shape[0]),
        "labels": json.dumps(list(state.labels)),
        "exclude": json.dumps(list(state.exclude)),
        "owners": json.dumps(sorted(state.owners)),
        "of_object": int(state.of_object),
        "kind": state.kind,
    }
    if state.objects:
        stacked = np.stack([found.vector for found in state.objects]).astype(little.dtype)
        fields["objects"] = np.ascontiguousarray(stacked).tobytes()  # (n, D)
        fields["object_labels"] = json.dumps([found.label for found in state.objects])
        fields["object_kinds"] = json.dumps([found.kind for found in state.objects])
    return fields


def decode_state(fields: dict[bytes, bytes]) -> QueryState:
    """The inverse of `encode_state`; raises ValueError on anything it did not write."""
    try:
        dtype, dim = fields[b"dtype"].decode(), int(fields[b"dim"])
        raw = fields[b"vector"]
        labels, exclude = json.loads(fields[b"labels"]), json.loads(fields[b"exclude"])
        owners = frozenset(int(user) for user in json.loads(fields[b"owners"]))
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a stored query state: {error}") from None
    if dtype not in VECTOR_DTYPES or dim < 1 or len(raw) != dim * np.dtype(dtype).itemsize:
        raise ValueError(f"stored vector does not match its dtype {dtype!r} and dim {dim}")
    vector = np.frombuffer(raw, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))
    objects = _decode_objects(fields, dtype, dim)
    of_object = fields.get(b"of_object") == b"1"  # absent where an older replica stored it
    kind = fields.get(b"kind", b"").decode(errors="replace")  # so is this
    return QueryState(
        vector, tuple(map(str, labels)), tuple(map(str, exclude)), owners, objects, of_object, kind
    )


def _decode_objects(fields: dict[bytes, bytes], dtype: str, dim: int) -> tuple[PhotoObject, ...]:
    """A room photo's objects (none in a state stored without them, by an older replica too)."""
    if b"object_labels" not in fields:
        return ()
    try:
        labels = [str(label) for label in json.loads(fields[b"object_labels"])]
        raw = fields[b"objects"]
        stored = fields.get(b"object_kinds")  # absent where an older replica stored it
        kinds = [""] * len(labels) if stored is None else [str(k) for k in json.loads(stored)]
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a stored query state: {error}") from None
    if len(raw) != len(labels) * dim * np.dtype(dtype).itemsize or len(kinds) != len(labels):
        raise ValueError(f"stored objects do not match their {len(labels)} labels")
    vectors = np.frombuffer(raw, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))
    rows = vectors.reshape(len(labels), dim)  # (n, D)
    return tuple(PhotoObject(*object_) for object_ in zip(labels, rows, kinds, strict=True))


class RedisState:
    """`SharedState` in Redis, with `fallback` (this process) while Redis cannot be reached."""

    def __init__(
        self, url: str, bot_id: str, fallback: LocalState, *, retry_after: float = RETRY_AFTER
    ) -> None:
        self.redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 1),  # one immediate retry: a connection Redis dropped
        )
        self.where = _host_of(url)  # for log lines: never the password
        self.prefix = f"snapfind:{bot_id}:"
        self.fallback = fallback
        self.retry_after = retry_after
        self._down_until: float | None = None  # set while Redis is failing
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._release = self.redis.register_script(_RELEASE)
        self._claims: dict[str, str] = {}  # tap -> token of this process's claims in Redis

    @property
    def up(self) -> bool:
        """Whether the last call reached Redis."""
        return self._down_until is None

    async def reachable(self) -> bool:
        """PING now (ignoring the wait after a failure); True, and back in use, if it answers."""
        return await self._try(self.redis.ping(), now=True) is not DOWN

    async def get_query(self, key: str) -> QueryState | None:
        fields = await self._try(self.redis.hgetall(self._key("q", key)))
        if fields is DOWN or not fields:  # a state cached while Redis was away is here
            return await self.fallback.get_query(key)
        try:
            return decode_state(fields)
        except ValueError as error:
            log.warning("query %s in Redis is unreadable (%s): treated as expired", key, error)
            return None

    async def put_query(self, key: str, state: QueryState) -> None:
        ttl = max(1, round(self.fallback.cache.ttl))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("q", key))  # no field of an older state, nor another type
            pipe.hset(self._key("q", key), mapping=encode_state(state))
            pipe.expire(self._key("q", key), ttl)
            stored = await self._try(pipe.execute())
        if stored is DOWN:
            await self.fallback.put_query(key, state)

    async def acquire(self, user_id: int) -> float:
        limiter = self.fallback.limiter
        args = [time.time(), limiter.window, limiter.limit, secrets.token_hex(8)]
        wait = await self._try(self._acquire(keys=[self._key("r", str(user_id))], args=args))
        if wait is DOWN:
            return await self.fallback.acquire(user_id)
        return float(wait)

    async def first_delivery(self, update_id: int) -> bool:
        claim = self.redis.set(self._key("u", str(update_id)), 1, nx=True, ex=UPDATE_TTL)
        first = await self._try(claim)  # None: another replica set it first
        if first is DOWN:
            return await self.fallback.first_delivery(update_id)
        return first is not None

    async def claim_press(self, tap: str) -> bool:
        if tap in self._claims or tap in self.fallback.presses:  # this process answers it
            return False
        token = secrets.token_hex(8)
        claim = self.redis.set(self._key("p", tap), token, nx=True, ex=PRESS_TTL)
        claimed = await self._try(claim)  # None: another press holds it
        if claimed is DOWN:
            return await self.fallback.claim_press(tap)
        if claimed is None:
            return False
        self._claims[tap] = token
        return True

    async def release_press(self, tap: str) -> None:
        token = self._claims.pop(tap, None)
        if token is None:  # claimed in this process while Redis was away
            await self.fallback.release_press(tap)
            return
        await self._try(self._release(keys=[self._key("p", tap)], args=[token]))  # DOWN: lapses

    async def close(self) -> None:
        await self.redis.aclose()

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _try(self, call: Awaitable[T], *, now: bool = False) -> T | object:
        """`call`'s result, or `DOWN` while Redis is failing (then the caller falls back).

        After a failure Redis is left alone for `retry_after` seconds, unless `now`; a command
        refused for a key of the wrong type falls back alone: Redis stays in use.
        """
        waiting = self._down_until is not None and time.monotonic() < self._down_until
        if waiting and not now:
            _close(call)
            return DOWN
        try:
            result = await call
        except (RedisError, OSError) as error:
            if _wrong_type(error):  # Redis is fine: one key holds another kind of value
                log.warning("Redis at %s: %s: answered without it", self.where, error)
                return DOWN
            if self._down_until is None:
                log.warning(
                    "Redis at %s failed (%s): answering from this process's memory until it "
                    "is back; buttons of results cached in Redis expire meanwhile",
                    self.where,
                    type(error).__name__,
                )
            self._down_until = time.monotonic() + self.retry_after
            return DOWN
        if self._down_until is not None:
            log.info("Redis at %s is back: shared query state in use again", self.where)
            self._down_until = None
        return result


def _wrong_type(error: Exception) -> bool:
    """A key of another type than the command's (set by hand, or by another program)."""
    return isinstance(error, ResponseError) and str(error).startswith("WRONGTYPE")


def _close(call: Awaitable[object]) -> None:
    """Discard a coroutine that will not be awaited (no 'never awaited' warning)."""
    close = getattr(call, "close", None)
    if close is not None:
        close()


def _host_of(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
