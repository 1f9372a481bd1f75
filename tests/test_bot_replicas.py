"""Two bot replicas in webhook mode behind a load balancer, sharing a real Redis.

The loopback Bot API server posts every update to `Dispatcher`, which hands them to the two
replicas in turn (as Caddy does with `--scale bot=N`). Each replica has its own `Application`,
worker and `SearchService` (as separate processes would); only Redis is shared.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from bot.app import attach, connect, make_resources, serve
from bot.poll_guard import AlreadyPolling
from bot.redis_state import RedisState
from retrieval.extractor import Extractor
from tests.redis_server import RedisServer, free_port
from tests.telegram_api import BotApiServer
from tests.telegram_api.dispatcher import Dispatcher
from tests.telegram_api.harness import (
    BuiltIndex,
    RunningBot,
    bot_settings,
    button,
    results,
    running_bot,
    service_for,
    text_reply,
    until,
)
from tests.telegram_api.shapes import draw, jpeg

USER = 2001
A, B = 0, 1


@pytest.fixture
async def pair(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    tiny_extractor: Extractor,
    redis_server: RedisServer,
) -> AsyncIterator[tuple[list[RunningBot], Dispatcher, list[str]]]:
    """Two replicas sharing `redis_server`, stopped after the test."""
    async with replicas(server, shapes_index, tiny_extractor, redis_server.url) as running:
        yield running


@contextlib.asynccontextmanager
async def replicas(
    server: BotApiServer, index: BuiltIndex, extractor: Extractor, redis_url: str
) -> AsyncIterator[tuple[list[RunningBot], Dispatcher, list[str]]]:
    """Two webhook replicas behind a dispatcher; also yields every photo search they run."""
    ports = [free_port(), free_port()]
    searched: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        bots = []
        for port in ports:
            settings = bot_settings(
                server,
                index.index_dir,
                bot_mode="webhook",
                webhook_url=f"http://127.0.0.1:{port}/hook",
                webhook_listen="127.0.0.1",
                webhook_port=port,
                redis_url=redis_url,
            )
            service = service_for(index.index_dir, extractor)
            bot = await stack.enter_async_context(running_bot(settings, service))
            original = service.search_image
            service.search_image = _counting(original, searched, f"replica {len(bots)}")
            bots.append(bot)
        dispatcher = Dispatcher([f"http://127.0.0.1:{port}/hook" for port in ports])
        await stack.enter_async_context(dispatcher)
        server.webhook_url = dispatcher.url  # what setWebhook with the proxy's URL does
        yield bots, dispatcher, searched


def _counting(search: Callable, log: list[str], name: str) -> Callable:
    def counted(*args, **kwargs):  # runs on the replica's inference thread
        log.append(name)
        return search(*args, **kwargs)

    return counted


async def test_buttons_pressed_on_another_replica_and_a_replay_answered_once(
    server: BotApiServer, pair: tuple[list[RunningBot], Dispatcher, list[str]]
) -> None:
    bots, dispatcher, searched = pair
    photo = await server.send_photo(USER, jpeg(draw("lamp", "blue")))
    album, buttons = await results(server, USER)
    assert dispatcher.replica_of(photo["update_id"]) == [A]

    mark = len(server.calls)
    more = await server.press(USER, buttons.result, button(buttons, "More ▸"))
    more_album, _ = await results(server, USER, mark)
    assert dispatcher.replica_of(more["update_id"]) == [B]
    assert more_album.captions()[0].startswith("#6 ")

    # Telegram delivers the More press again (say its webhook call timed out): replica A
    # gets it this time, and drops it because replica B has answered it.
    assert await server.post_to_webhook(more, server.webhook_secret) == 200
    assert dispatcher.replica_of(more["update_id"]) == [B, A]
    await until(lambda: bots[A].res.stats.refused.get("repeated update") == 1)

    mark = len(server.calls)
    similar = await server.press(USER, buttons.result, button(buttons, "Similar to #2"))
    similar_album, similar_buttons = await results(server, USER, mark)
    assert dispatcher.replica_of(similar["update_id"]) == [B]
    assert similar_buttons.params["text"].startswith("Similar to #2 (")

    assert searched == ["replica 0"]  # one extraction; B answered both buttons from Redis
    albums = [c for c in server.sent_to(USER) if c.method == "sendMediaGroup"]
    assert albums == [album, more_album, similar_album]  # the replay added nothing


async def test_a_double_tap_split_between_replicas_sends_one_album(
    server: BotApiServer, pair: tuple[list[RunningBot], Dispatcher, list[str]]
) -> None:
    bots, dispatcher, searched = pair
    await server.send_photo(USER, jpeg(draw("lamp", "blue")))  # replica A
    _, buttons = await results(server, USER)
    more = button(buttons, "More ▸")
    album_sent = server.hold("sendMediaGroup")  # the first press stays in flight
    mark = len(server.calls)
    try:
        first = await server.press(USER, buttons.result, more)
        await server.reply(USER, "editMessageReplyMarkup", start=mark)  # it is under way
        second = await server.press(USER, buttons.result, more)
        await until(lambda: bots[A].res.stats.refused.get("repeated press") == 1)
    finally:
        album_sent.set()
    album, _ = await results(server, USER, mark)
    assert album.captions()[0].startswith("#6 ")
    assert dispatcher.replica_of(first["update_id"]) == [B]
    assert dispatcher.replica_of(second["update_id"]) == [A]  # the other replica dropped it
    assert bots[B].res.stats.refused.get("repeated press") is None

    # pressed again once answered (the claim released in Redis): a new press, served
    state = bots[A].res.state
    assert isinstance(state, RedisState)
    await until(lambda: _no_claims(state))
    again = await server.press(USER, buttons.result, more)
    await results(server, USER, server.calls.index(album) + 1)
    assert dispatcher.replica_of(again["update_id"]) == [B]
    albums = [c for c in server.sent_to(USER, mark) if c.method == "sendMediaGroup"]
    assert len(albums) == 2 and searched == ["replica 0"]


async def _no_claims(state: RedisState) -> bool:
    """No replica holds a press's claim in Redis."""
    return not await state.redis.keys(f"{state.prefix}p:*")


async def test_redis_stopped_and_restarted_mid_conversation(
    server: BotApiServer,
    redis_server: RedisServer,
    pair: tuple[list[RunningBot], Dispatcher, list[str]],
) -> None:
    bots, dispatcher, searched = pair
    await server.send_photo(USER, jpeg(draw("chair", "red")))  # replica A
    _, old_buttons = await results(server, USER)

    redis_server.stop()
    mark = len(server.calls)
    await server.send_photo(USER, jpeg(draw("sofa", "green")))  # replica B, no Redis
    during, _ = await results(server, USER, mark)
    assert during.captions()[0].splitlines()[0] == "#1 Green sofa"

    mark = len(server.calls)
    old = await server.press(USER, old_buttons.result, button(old_buttons, "More ▸"))
    assert "expired" in await text_reply(server, USER, mark)
    assert dispatcher.replica_of(old["update_id"]) == [A]

    redis_server.start()
    for bot in bots:
        state = bot.res.state
        assert isinstance(state, RedisState)
        await until(state.reachable)
    mark = len(server.calls)
    photo = await server.send_photo(USER, jpeg(draw("table", "blue")))
    _, after_buttons = await results(server, USER, mark)
    mark = len(server.calls)
    press = await server.press(USER, after_buttons.result, button(after_buttons, "More ▸"))
    again, _ = await results(server, USER, mark)
    assert again.captions()[0].startswith("#6 ")
    assert dispatcher.replica_of(photo["update_id"]) == [B]
    assert dispatcher.replica_of(press["update_id"]) == [A]
    assert searched == ["replica 0", "replica 1", "replica 1"]  # three photos, no press


async def test_only_one_process_polls(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    tiny_extractor: Extractor,
    redis_server: RedisServer,
) -> None:
    settings = bot_settings(server, shapes_index.index_dir, redis_url=redis_server.url)
    index_dir = shapes_index.index_dir
    with pytest.raises(AlreadyPolling, match="Telegram refused getUpdates"):
        async with running_bot(settings, service_for(index_dir, tiny_extractor)) as first:
            second = await connect(settings)  # started by mistake: the Redis lock refuses it
            attach(second, make_resources(settings, service_for(index_dir, tiny_extractor)))
            with pytest.raises(AlreadyPolling, match="only one process may poll"):
                await serve(second, settings, asyncio.Event())
            await server.send_photo(USER, jpeg(draw("lamp", "blue")))
            await results(server, USER)  # the first one still answers

            # A webhook is set (or another poller without Redis): Telegram answers 409, and
            # the poller stops itself, its task ending with the error.
            server.webhook_url = "http://127.0.0.1:9/elsewhere"
            async with asyncio.timeout(20):
                await first.stop.wait()
