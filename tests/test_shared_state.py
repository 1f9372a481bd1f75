"""The shared state's Redis side against a real redis-server, and the one-poller rule."""

import asyncio

import numpy as np
import pytest
from telegram.error import Conflict

from bot.buttons import QueryState
from bot.poll_guard import AlreadyPolling, PollGuard
from bot.query_cache import QueryCache
from bot.rate_limit import RateLimiter
from bot.redis_state import PRESS_TTL, RETRY_AFTER, RedisState, decode_state, encode_state
from bot.shared_state import LocalState, SeenUpdates
from tests.redis_server import RedisServer

STATE = QueryState(
    np.linspace(-1, 1, 7, dtype=np.float32), ("bed", "sofa"), ("p9",), frozenset({7, 70})
)


def local(limit: int = 100, ttl: float = 60.0) -> LocalState:
    return LocalState(QueryCache(10, ttl), RateLimiter(limit, 10.0))


def as_stored(state: QueryState) -> dict[bytes, bytes]:
    """The hash fields as Redis hands them back: every value as bytes."""
    fields = encode_state(state).items()
    return {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in fields}


def test_a_query_state_is_stored_as_raw_bytes_with_its_dtype_and_dim() -> None:
    fields = encode_state(STATE)
    assert fields["dtype"] == "<f4" and fields["dim"] == 7 and len(fields["vector"]) == 28
    back = decode_state(as_stored(STATE))
    assert back.vector.dtype == np.float32 and np.array_equal(back.vector, STATE.vector)
    assert (back.labels, back.exclude, back.owners) == (STATE.labels, STATE.exclude, STATE.owners)


@pytest.mark.parametrize(
    ("field", "value"),
    [(b"dim", b"8"), (b"dtype", b"|O"), (b"dtype", b"<i8"), (b"labels", b"not json")],
)
def test_a_stored_state_that_does_not_add_up_is_refused(field: bytes, value: bytes) -> None:
    fields = as_stored(STATE)
    fields[field] = value
    with pytest.raises(ValueError):
        decode_state(fields)


def test_seen_updates_forget_the_oldest_beyond_their_size() -> None:
    seen = SeenUpdates(size=2)
    assert [seen.first(u) for u in (1, 1, 2, 3)] == [True, False, True, True]
    assert seen.first(1)  # forgotten: only the two most recent are kept


async def test_two_replicas_share_queries_limits_and_seen_updates(
    redis_server: RedisServer,
) -> None:
    one = RedisState(redis_server.url, "42", local(limit=2, ttl=30))
    two = RedisState(redis_server.url, "42", local(limit=2, ttl=30))
    try:
        await one.put_query("k", STATE)
        got = await two.get_query("k")
        assert got is not None and np.array_equal(got.vector, STATE.vector)
        assert 0 < await two.redis.ttl("snapfind:42:q:k") <= 30
        assert await one.get_query("other") is None

        assert await one.acquire(7) == 0 and await two.acquire(7) == 0
        wait = await one.acquire(7)
        assert 9 < wait <= 10  # the third search in a 10 s window waits for the first
        assert await two.acquire(8) == 0  # another user is counted apart

        assert await one.first_delivery(5)
        assert not await two.first_delivery(5)
        assert not await one.first_delivery(5)
    finally:
        await one.close()
        await two.close()


async def test_a_press_is_claimed_once_until_released_in_this_process() -> None:
    state = local()
    assert await state.claim_press("1:2:3:m|k|0|5")
    assert not await state.claim_press("1:2:3:m|k|0|5")  # the double tap's second press
    assert await state.claim_press("1:2:3:s|k|0|1")  # another button is answered alongside
    await state.release_press("1:2:3:m|k|0|5")
    assert await state.claim_press("1:2:3:m|k|0|5")  # pressed again once answered


async def test_replicas_share_press_claims_that_expire_and_release_only_their_own(
    redis_server: RedisServer,
) -> None:
    one = RedisState(redis_server.url, "42", local())
    two = RedisState(redis_server.url, "42", local())
    key = "snapfind:42:p:tap"
    try:
        assert await one.claim_press("tap")
        assert not await two.claim_press("tap") and not await one.claim_press("tap")
        assert 0 < await two.redis.ttl(key) <= PRESS_TTL  # a crashed holder's claim lapses
        await two.release_press("tap")  # not two's claim: it stays
        assert not await two.claim_press("tap")
        await one.release_press("tap")
        assert not await two.redis.exists(key)
        assert await two.claim_press("tap")  # pressed again once answered

        await two.redis.delete(key)  # two's claim lapsed (its answer outlasted PRESS_TTL)
        assert await one.claim_press("tap")
        await two.release_press("tap")  # two finishes late: one's claim is left alone
        assert await one.redis.exists(key) and not await two.claim_press("tap")
        await one.release_press("tap")
    finally:
        await one.close()
        await two.close()


async def test_without_redis_the_process_answers_alone_and_uses_redis_when_back(
    redis_server: RedisServer,
) -> None:
    state = RedisState(redis_server.url, "42", local())
    try:
        await state.put_query("old", STATE)
        redis_server.stop()
        assert await state.get_query("old") is None  # in Redis, out of reach: expired
        await state.put_query("new", STATE)  # kept in this process meanwhile
        assert not state.up
        assert await state.get_query("new") is not None
        assert await state.acquire(1) == 0 and await state.first_delivery(9)
        assert await state.claim_press("t") and not await state.claim_press("t")
        await state.release_press("t")  # claimed in this process: released there
        assert await state.claim_press("t")
        await state.release_press("t")

        redis_server.start()
        # no restart, no call to `reachable`: within RETRY_AFTER of its return, Redis is used
        async with asyncio.timeout(5 * RETRY_AFTER):
            while not await state.redis.exists("snapfind:42:q:later"):
                await state.put_query("later", STATE)
                await asyncio.sleep(RETRY_AFTER / 10)
        assert state.up and await state.reachable()
        assert await state.get_query("new") is not None  # still served from this process
    finally:
        await state.close()


async def test_a_second_poller_is_refused_by_the_redis_lock(redis_server: RedisServer) -> None:
    first = RedisState(redis_server.url, "42", local())
    second = RedisState(redis_server.url, "42", local())
    polling = PollGuard("snapfind_bot", asyncio.Event(), first.redis, "snapfind:42:poller")
    late = PollGuard("snapfind_bot", asyncio.Event(), second.redis, "snapfind:42:poller")
    try:
        await polling.acquire()
        with pytest.raises(AlreadyPolling, match=r"only one process may poll .*held by"):
            await late.acquire()
        await polling.release()
        await late.acquire()  # the lock was released: the next poller may start
        await late.release()
    finally:
        await first.close()
        await second.close()


def test_telegram_409_stops_the_poller_with_one_clear_line() -> None:
    stop = asyncio.Event()
    guard = PollGuard("snapfind_bot", stop, None, "")
    guard.on_poll_error(Conflict("Conflict: terminated by other getUpdates request"))
    assert stop.is_set()
    with pytest.raises(AlreadyPolling, match="only one process may poll Telegram for @snapfind"):
        guard.check()
