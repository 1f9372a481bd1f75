"""Regression tests of the 2026-12-05 sweep of the bot under faults: a Bot API outage (502s,
refused connections) while photos are in flight, a file download that fails or stalls, a
failure past the retries, and Redis keys of the wrong type.

Every test runs the real bot against the loopback Bot API (tests/telegram_api), Redis ones
against a private redis-server.
"""

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from bot import conversation
from bot.handlers import SORRY
from bot.redis_state import RedisState
from bot.retry import RetryingRequests
from retrieval.errors import ConfigError, StoreError
from retrieval.search import SearchService
from tests.redis_server import RedisServer
from tests.telegram_api import TOKEN, BotApiServer
from tests.telegram_api.harness import (
    BuiltIndex,
    bot_settings,
    button,
    results,
    running_bot,
    text_reply,
    until,
)
from tests.telegram_api.server import DOWNLOAD
from tests.telegram_api.shapes import draw, jpeg, png

USER = 1001


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The bot's log records that carry a traceback."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("bot") and r.exc_info]


def first_line(album_captions: list[str]) -> str:
    return album_captions[0].splitlines()[0]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's RetryAfter
@pytest.mark.parametrize("kind", ["500", "429", "timeout"])
async def test_a_file_download_that_fails_once_is_retried(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    # before: getFile and every send were retried, the download was not: "Sorry, something
    # went wrong" and a traceback for one 500 (or one stalled read) on the file server
    settings = bot_settings(server, shapes_index.index_dir, request_timeout=1.0)
    server.inject(DOWNLOAD, kind, retry_after=1, hang=3.0)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("rug", "blue")))
        album, _ = await results(server, USER)
    assert server.faults_served == [(DOWNLOAD, kind)]
    assert first_line(album.captions()) == "#1 Blue rug"
    assert len(server.downloads) == 1 and not tracebacks(caplog)


async def test_photos_in_flight_and_sent_during_a_20_s_outage_are_answered_once(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # before: a call was tried 4 times within 3.5 s, so the photo in flight when Telegram went
    # away was lost, its apology too (the shopper heard nothing)
    caplog.set_level(logging.INFO)
    settings = bot_settings(server, shapes_index.index_dir, request_timeout=1.0)
    in_flight = server.hold("getFile")
    async with running_bot(settings, service):
        await server.send_photo(USER, jpeg(draw("chair", "red")))
        await until(lambda: "getFile" in server.held)
        await server.refuse_connections(20)
        in_flight.set()  # its connection is gone: the bot meets refused connections from now
        await server.send_photo(USER, jpeg(draw("lamp", "blue")))  # fetched after the outage
        await until(lambda: server.count("sendMediaGroup") == 2, timeout=60)
        mark = len(server.calls)
        await server.send_text(USER, "/help")  # a later update: nothing else was on its way
        await text_reply(server, USER, mark)
    albums = [c for c in server.calls if c.method == "sendMediaGroup"]
    assert sorted(first_line(a.captions()) for a in albums) == ["#1 Blue lamp", "#1 Red chair"]
    assert server.count("sendMediaGroup") == 2
    assert not any(c.params.get("text") == SORRY for c in server.calls)
    assert not tracebacks(caplog)
    retried = [r.getMessage() for r in caplog.records if r.name == "bot.retry"]
    assert any("getFile failed" in line for line in retried)
    assert any("getFile went through" in line for line in retried)


async def test_a_502_outage_answers_a_photo_whose_search_was_under_way(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir, request_timeout=1.0)
    in_flight = server.hold("getFile")
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("bed", "green")))
        await until(lambda: "getFile" in server.held)
        server.outage(6)  # getFile, the download, the album and getUpdates: all 502
        in_flight.set()
        album, _ = await results(server, USER, timeout=30)
    assert first_line(album.captions()) == "#1 Green bed"
    assert ("getFile", "outage 502") in server.faults_served


async def test_a_failure_past_the_retries_is_one_log_line_and_a_polite_reply(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # before: every update that met an outage logged a 25-line traceback at ERROR
    settings = bot_settings(server, shapes_index.index_dir, request_timeout=1.0)
    server.inject("getFile", "500", times=50)
    async with running_bot(settings, service) as bot:
        policy = bot.app.bot.rate_limiter
        assert isinstance(policy, RetryingRequests)
        policy.patience = 0.5  # give up after two tries, not 30 s
        await server.send_photo(USER, png(draw("rug", "blue")))
        assert await text_reply(server, USER, 0) == SORRY
    assert not tracebacks(caplog)
    failed = [r for r in caplog.records if r.name == "bot.handlers" and "did not answer" in r.msg]
    assert len(failed) == 1 and failed[0].levelno == logging.WARNING
    assert bot.res.stats.refused == {"Bot API unreachable": 1}


async def test_a_vector_store_that_fails_is_one_log_line_a_polite_reply_and_the_bot_goes_on(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # before: Milvus down during a search logged a traceback and told the shopper "Sorry,
    # something went wrong", as for a bug of ours
    search_image = service.search_image
    failures = iter([StoreError("Milvus collection 'shop': deadline exceeded")])

    def store_down_once(*args, **kwargs):
        for error in failures:
            raise error
        return search_image(*args, **kwargs)

    monkeypatch.setattr(service, "search_image", store_down_once)
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service) as bot:
        await server.send_photo(USER, png(draw("rug", "blue")))
        assert await text_reply(server, USER, 0) == StoreError.user_message
        start = len(server.calls)
        await server.send_photo(USER, png(draw("rug", "blue")))
        album, _ = await results(server, USER, start)
    assert first_line(album.captions()) == "#1 Blue rug"
    assert not tracebacks(caplog)
    failed = [r for r in caplog.records if "deadline exceeded" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.WARNING
    assert bot.res.stats.refused == {"vector store unavailable": 1}


async def test_redis_keys_of_the_wrong_type_cost_one_reply_not_the_shared_state(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    redis_server: RedisServer,
) -> None:
    # before: WRONGTYPE counted as Redis being down: every replica fell back to its own
    # memory (others' buttons "expired"), and the key, never rewritten, did it again each time
    settings = bot_settings(server, shapes_index.index_dir, redis_url=redis_server.url)
    async with running_bot(settings, service) as bot:
        state = bot.res.state
        assert isinstance(state, RedisState)
        photo = png(draw("rug", "blue"))
        await server.send_photo(USER, photo, unique_id="RUG")
        _, buttons = await results(server, USER)
        query, limit = f"{state.prefix}q:RUG", f"{state.prefix}r:{USER}"
        await _overwrite(state.redis, query, limit)

        mark = len(server.calls)
        await server.press(USER, buttons.result, button(buttons, "More ▸"))
        assert "expired" in await text_reply(server, USER, mark)
        assert state.up

        mark = len(server.calls)
        await server.send_photo(USER, photo, unique_id="RUG")
        album, buttons = await results(server, USER, mark)
        assert first_line(album.captions()) == "#1 Blue rug" and state.up
        assert await state.redis.type(query) == b"hash"
        assert await state.redis.type(limit) == b"zset"
        mark = len(server.calls)
        await server.press(USER, buttons.result, button(buttons, "More ▸"))
        more, _ = await results(server, USER, mark)  # answered from Redis again
        assert more.captions()[0].startswith("#6 ")


async def _overwrite(redis: Redis, *keys: str) -> None:
    """What a hand-made `SET` over the bot's keys does: strings where it keeps a hash and a
    sorted set."""
    for key in keys:
        assert await redis.exists(key)
        await redis.set(key, b"garbage")


async def test_a_download_trickling_in_forever_is_cut_off_and_tried_again(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # before: a byte every 0.5 s never hit the 1 s read timeout: no reply after 90 s (the
    # 304-byte photo needed 152 s), and stopping the bot waited for it
    monkeypatch.setattr(conversation, "DOWNLOAD_DEADLINE", 2.0)
    settings = bot_settings(server, shapes_index.index_dir, request_timeout=1.0)
    server.trickle = 0.5
    async with running_bot(settings, service, stop_timeout=10):
        await server.send_photo(USER, png(draw("rug", "blue")))
        await until(lambda: server.downloads)
        server.trickle = None  # the next try is served at once; the first still trickles
        album, _ = await results(server, USER)
    assert first_line(album.captions()) == "#1 Blue rug"
    assert len(server.downloads) == 2


async def test_a_token_revoked_while_polling_stops_the_bot_with_one_line(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    # before: PTB's polling loop gave up on the 401 and the bot ran on, answering nothing
    # (its heartbeat beating); stopping it then raised InvalidToken midway through shutdown
    settings = bot_settings(server, shapes_index.index_dir, poll_timeout=1)
    with pytest.raises(ConfigError, match="stopped accepting SNAPFIND_BOT_TOKEN") as stopped:
        async with running_bot(settings, service) as bot:
            await server.send_photo(USER, png(draw("rug", "blue")))
            await results(server, USER)
            server.token = "123456789:revoked-in-BotFather"
            async with asyncio.timeout(20):
                await bot.stop.wait()
    assert TOKEN not in str(stopped.value) and "@BotFather" in str(stopped.value)
    assert not bot.app.running  # and shut down in full:
    with pytest.raises(RuntimeError, match="not running"):
        await bot.res.worker.run(lambda: None)
