"""Regression tests for the bot's items of the outside audit (issue 11), kept in one file so
they can be re-applied on the restructured bot (issue 10): a reload watcher that died on
foreign errors, unclipped category text, buttons not tied to their user, unbounded paging, a
callback query without a message, and an allowlist left open without a word.
"""

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from bot.buttons import MAX_RESULTS, QueryState, results_keyboard
from bot.captions import results_header
from bot.reload import IndexReloader
from retrieval.extractor import Extractor
from retrieval.manifest import VECTORS
from retrieval.results import Hit, Product
from retrieval.search import SearchService
from tests.telegram_api import BotApiServer
from tests.telegram_api.harness import (
    BuiltIndex,
    bot_settings,
    build,
    button,
    results,
    running_bot,
    service_for,
    text_reply,
    until,
)
from tests.telegram_api.shapes import draw, png

USER, OTHER, ADMIN = 1001, 2002, 3003


# --- 2. the reload watcher dies on errors that are not SnapfindError ---------------------------


async def test_watcher_survives_a_foreign_error_and_loads_the_next_release(
    tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build(tmp_path, tiny_extractor)
    service = service_for(built.index_dir, tiny_extractor)
    original, failures = service.reload_if_changed, []

    def failing_once():
        if not failures:
            failures.append(1)
            raise RuntimeError("Error in faiss::read_index: unexpected end of file")
        return original()

    monkeypatch.setattr(service, "reload_if_changed", failing_once)
    watcher = asyncio.create_task(IndexReloader(service).watch(0.02))
    try:
        await until(lambda: failures or watcher.done())
        build(tmp_path, tiny_extractor, edition="second ")  # must still be picked up
        newest = (built.index_dir / "current").resolve()
        await until(lambda: service.index.release == newest or watcher.done())
        assert not watcher.done(), watcher.exception()
    finally:
        watcher.cancel()
    assert service.index.release == newest


async def test_watcher_skips_a_damaged_release_and_loads_the_next(
    tmp_path: Path, tiny_extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    built = build(tmp_path, tiny_extractor)
    service = service_for(built.index_dir, tiny_extractor)
    build(tmp_path, tiny_extractor, edition="second ")
    damaged = (built.index_dir / "current").resolve()
    (damaged / VECTORS).write_bytes((damaged / VECTORS).read_bytes()[:100])  # truncated
    watcher = asyncio.create_task(IndexReloader(service).watch(0.02))
    try:
        await until(lambda: "is damaged" in caplog.text or watcher.done())
        build(tmp_path, tiny_extractor, edition="third ")
        newest = (built.index_dir / "current").resolve()
        await until(lambda: service.index.release == newest or watcher.done())
        assert not watcher.done(), watcher.exception()
    finally:
        watcher.cancel()
    assert "still serving the old one" in caplog.text


async def test_admin_reload_of_an_unopenable_release_says_why(
    server: BotApiServer, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    built = build(tmp_path, tiny_extractor)
    service = service_for(built.index_dir, tiny_extractor)
    settings = bot_settings(server, built.index_dir, admin_ids=str(ADMIN))
    async with running_bot(settings, service):
        release = (built.index_dir / "current").resolve()
        (release / VECTORS).write_bytes((release / VECTORS).read_bytes()[:100])
        await server.send_text(ADMIN, "/reload")
        reply = await text_reply(server, ADMIN, 0)
    assert reply.startswith(f"Failed: index file {release / VECTORS} is damaged")


# --- 6. unclipped category text -------------------------------------------------------------


def test_a_huge_category_is_clipped_in_the_header_and_the_buttons() -> None:
    label = "x" * 5000
    assert len(results_header(0, 5, label)) < 120
    hit = Hit(Product("p1", "Sofa", (label, "sofa"), None), 0.9)
    state = QueryState(np.zeros(1, np.float32), (label, "sofa"))
    markup = results_keyboard("key", state, [hit], 0, -1, 5)
    texts = [b.text for row in markup.inline_keyboard for b in row]
    assert any(text.startswith("Only xxx") for text in texts)
    assert all(len(text) <= 64 for text in texts)


# --- 7. buttons tied to the user who sent the photo; paging capped ---------------------------


async def test_a_forged_press_on_another_users_search_is_refused(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("sofa", "red")))
        _, buttons = await results(server, USER)
        await server.send_text(OTHER, "/start")
        own = await server.reply(OTHER, "sendMessage")
        mark = len(server.calls)
        await server.press(OTHER, own.result, button(buttons, "More ▸"))  # USER's query key
        assert "expired" in await text_reply(server, OTHER, mark)
    assert not [c for c in server.sent_to(OTHER, mark) if c.method == "sendMediaGroup"]


@pytest.mark.parametrize("number", [MAX_RESULTS, 500])
async def test_presses_past_the_result_cap_are_refused(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService, number: int
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("sofa", "red")))
        _, buttons = await results(server, USER)
        action, key, category, _ = button(buttons, "More ▸").split("|")
        for forged in (f"{action}|{key}|{category}|{number}", f"s|{key}|{category}|{number}"):
            mark = len(server.calls)
            await server.press(USER, buttons.result, forged)
            assert "as far as results go" in await text_reply(server, USER, mark)
            assert not [c for c in server.sent_to(USER, mark) if c.method == "sendMediaGroup"]


# --- 10. a callback query without a message; an open allowlist said at start-up --------------


async def test_a_button_of_an_inline_message_is_answered_without_an_error(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        query = {
            "id": "CQinline",
            "from": {"id": USER, "is_bot": False, "first_name": "U"},
            "chat_instance": "ci",
            "inline_message_id": "inline-1",
            "data": "m|gone|-1|5",
        }
        await server.push_update({"callback_query": query})
        answer = await server.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert "only works under results" in answer.params["text"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_empty_allowlist_is_said_at_start_up(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_bot(bot_settings(server, shapes_index.index_dir), service):
        pass
    assert any("SNAPFIND_ALLOWED_USERS is empty" in r.getMessage() for r in caplog.records)
    caplog.clear()
    private = bot_settings(server, shapes_index.index_dir, allowed_users=str(USER))
    async with running_bot(private, service):
        pass
    assert not any("ALLOWED_USERS" in r.getMessage() for r in caplog.records)
