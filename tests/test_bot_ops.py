"""Operating the bot: access control, rate limit, /stats, hot reload, webhook, Bot API faults,
token handling. The real Application runs against the loopback Bot API throughout.
"""

import asyncio
import logging
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.app import run_async
from bot.handlers import HELP, NOT_ALLOWED, PLEASE_PHOTO
from bot.redaction import MASK
from retrieval.errors import ConfigError
from retrieval.extractor import Extractor
from retrieval.search import SearchService
from tests.telegram_api import TOKEN, BotApiServer
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

USER, ADMIN, STRANGER = 1001, 42, 666


def titles(album_captions: list[str]) -> list[str]:
    return [c.splitlines()[0].split(" ", 1)[1] for c in album_captions]


async def test_only_allowed_users_and_admins_get_answers(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(
        server, shapes_index.index_dir, allowed_users=f"{USER}", admin_ids=f"{ADMIN}"
    )
    async with running_bot(settings, service):
        await server.send_photo(STRANGER, png(draw("sofa", "red")))
        assert await text_reply(server, STRANGER, 0) == NOT_ALLOWED
        await server.send_photo(USER, png(draw("sofa", "red")))
        _, buttons = await results(server, USER)
        await server.send_text(ADMIN, "/start")
        assert await text_reply(server, ADMIN, 0) == HELP
        mark = len(server.calls)
        await server.press(STRANGER, buttons.result, button(buttons, "More ▸"))
        answer = await server.wait_for(lambda c: c.method == "answerCallbackQuery", start=mark)
        assert answer.params["text"] == NOT_ALLOWED and answer.params["show_alert"] is True
    assert [c.method for c in server.sent_to(STRANGER)] == ["sendMessage"]


async def test_rate_limit_is_per_user(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir, rate_limit=2, rate_window=60)
    async with running_bot(settings, service):
        for colour in ("red", "green"):
            mark = len(server.calls)
            await server.send_photo(USER, png(draw("lamp", colour)))
            await results(server, USER, mark)
        mark = len(server.calls)
        await server.send_photo(USER, png(draw("lamp", "blue")))
        reply = await text_reply(server, USER, mark)
        assert reply.startswith("That's a lot of searches! Please wait ")
        await server.send_photo(USER + 1, png(draw("lamp", "blue")))
        await results(server, USER + 1)
    assert sum(c.method == "sendMediaGroup" for c in server.sent_to(USER)) == 2


async def test_a_stranger_is_kept_out_even_when_the_refusal_cannot_be_sent(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    """An error in the gate must not let the update through to the handlers."""
    settings = bot_settings(server, shapes_index.index_dir, allowed_users=f"{USER}")
    server.inject("sendMessage", "400", description="Bad Request: chat not found")
    async with running_bot(settings, service) as running:
        await server.send_photo(STRANGER, png(draw("sofa", "red")))
        await until(lambda: server.faults_served == [("sendMessage", "400")])
        await until(lambda: running.app.update_processor.current_concurrent_updates == 0)
    assert server.count("getFile") == 0
    assert not [c for c in server.sent_to(STRANGER) if c.method == "sendMediaGroup"]


async def test_stats_are_for_admins(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir, admin_ids=f"{ADMIN},7")
    async with running_bot(settings, service) as running:
        await server.send_photo(ADMIN, png(draw("bed", "blue")))
        await results(server, ADMIN)
        await until(lambda: running.res.stats.queries >= 1)  # recorded just after the reply
        mark = len(server.calls)
        await server.send_text(ADMIN, "/stats")
        stats = await text_reply(server, ADMIN, mark)
        await server.send_text(USER, "/stats")
        assert await text_reply(server, USER, 0) == PLEASE_PHOTO
    assert "Catalog: 24 products, 24 images" in stats
    assert "Backbone: efficientnetb0" in stats and "64 px" in stats
    assert "Queries served: 1 (0 from cache)" in stats
    p50 = stats.split("p50 ")[1].split(" ms")[0]
    assert float(p50) > 0 and "p95 " in stats
    assert "extract" in stats and "download" in stats


async def test_admin_commands_with_arguments_do_nothing_and_say_how_to_use_them(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reloads: list[int] = []
    original = service.reload

    def counted():
        reloads.append(1)
        return original()

    monkeypatch.setattr(service, "reload", counted)
    settings = bot_settings(server, shapes_index.index_dir, admin_ids=f"{ADMIN}")
    async with running_bot(settings, service):
        for command in ("/reload 20260101T000000Z", "/stats today"):
            mark = len(server.calls)
            await server.send_text(ADMIN, command)
            reply = await text_reply(server, ADMIN, mark)
            name = command.split()[0]
            assert reply.startswith(f"{name} takes no arguments") and len(reply) < 120, reply
        assert reloads == []
        mark = len(server.calls)
        await server.send_text(ADMIN, "/reload")
        assert (await text_reply(server, ADMIN, mark)).startswith("Reloaded: 24 products")
    assert reloads == [1]


async def test_reload_swaps_the_index_while_a_query_is_in_flight(
    server: BotApiServer,
    tmp_path: Path,
    tiny_extractor: Extractor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = build(tmp_path, tiny_extractor)
    service = service_for(built.index_dir, tiny_extractor)
    entered, release = threading.Event(), threading.Event()
    original = tiny_extractor.embed_one

    def held(image: np.ndarray) -> np.ndarray:
        entered.set()
        release.wait(30)
        return original(image)

    monkeypatch.setattr(tiny_extractor, "embed_one", held)
    settings = bot_settings(server, built.index_dir, admin_ids=f"{ADMIN}")
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("lamp", "red")))
        assert await asyncio.to_thread(entered.wait, 10)  # the query is inside the network
        old = service.index
        await asyncio.to_thread(build, tmp_path, tiny_extractor, "New ")
        await server.send_text(ADMIN, "/reload")
        reloaded = await text_reply(server, ADMIN, 0)  # answered while the query still runs
        assert reloaded.startswith("Reloaded: 24 products") and service.index is not old
        assert not [c for c in server.sent_to(USER) if c.method == "sendMediaGroup"]
        release.set()
        in_flight, _ = await results(server, USER)
        editions = {t.startswith("New ") for t in titles(in_flight.captions())}
        assert len(editions) == 1  # one index answered it, never a mix
        mark = len(server.calls)
        await server.send_photo(USER, png(draw("rug", "green")))
        after, _ = await results(server, USER, mark)
    assert titles(after.captions())[0] == "New Green rug"


async def test_a_newly_published_index_is_picked_up_by_watching_the_manifest(
    server: BotApiServer, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    built = build(tmp_path, tiny_extractor)
    service = service_for(built.index_dir, tiny_extractor)
    settings = bot_settings(server, built.index_dir, watch_interval=0.1)
    photo = png(draw("table", "green"))
    async with running_bot(settings, service):
        await server.send_photo(USER, photo, unique_id="same")
        before, _ = await results(server, USER)
        await asyncio.to_thread(build, tmp_path, tiny_extractor, "New ")
        await until(lambda: "catalogNew" in service.index.manifest.catalog)
        mark = len(server.calls)
        await server.send_photo(USER, photo, unique_id="same")
        after, _ = await results(server, USER, mark)
    assert titles(before.captions())[0] == "Green table"
    assert titles(after.captions())[0] == "New Green table"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_webhook_accepts_only_updates_with_the_secret(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    port = _free_port()
    settings = bot_settings(
        server,
        shapes_index.index_dir,
        bot_mode="webhook",
        webhook_url=f"http://127.0.0.1:{port}/snapfind/hook",
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_secret="s3cret_Webhook-token",
    )
    async with running_bot(settings, service):
        assert server.webhook_url == f"http://127.0.0.1:{port}/snapfind/hook"
        assert server.webhook_secret == "s3cret_Webhook-token"
        await server.send_photo(USER, png(draw("chair", "blue")))  # delivered with the secret
        album, _ = await results(server, USER)
        forged = server.numbered(server.message_update(STRANGER, text="/start"))
        assert await server.post_to_webhook(forged, "wrong-secret") == 403
        assert await server.post_to_webhook(server.numbered(forged), None) == 403
        # A genuine update from the same user afterwards is answered exactly once: the two
        # forged ones were refused at the door (403) and never reached a handler.
        mark = len(server.calls)
        await server.send_text(STRANGER, "/start")
        await text_reply(server, STRANGER, mark)
    assert titles(album.captions())[0] == "Blue chair"
    assert [c.method for c in server.sent_to(STRANGER)] == ["sendMessage"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter()
@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("sendMediaGroup", "500"),
        ("sendMediaGroup", "429"),
        ("sendMediaGroup", "timeout"),
        ("getFile", "timeout"),
        ("sendMessage", "500"),
    ],
)
async def test_the_reply_survives_a_bot_api_failure(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService, method: str, kind: str
) -> None:
    settings = bot_settings(server, shapes_index.index_dir, request_timeout=1.0)
    server.inject(method, kind, retry_after=1, hang=2.0)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("rug", "blue")))
        album, buttons = await results(server, USER)
    assert server.faults_served == [(method, kind)]
    assert titles(album.captions())[0] == "Blue rug"
    assert buttons.params["text"].startswith("Matches 1–5")
    assert server.count("sendMediaGroup") == 1


async def test_a_user_who_blocked_the_bot_is_no_error_and_gets_no_apology(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    server.inject("sendMediaGroup", "403")  # blocked while the search ran
    async with running_bot(settings, service) as running:
        await server.send_photo(USER, png(draw("rug", "blue")))
        await until(lambda: running.res.stats.refused.get("Forbidden") == 1)
    assert server.faults_served == [("sendMediaGroup", "403")]
    assert not [c for c in server.sent_to(USER) if c.method == "sendMessage"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_rejected_token_is_one_line_and_never_logged(
    server: BotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "987654321:WRONG-token_abcdefghijklmnopqrstuvwxyz"
    settings = bot_settings(server, tmp_path, bot_token=wrong)

    def never() -> SearchService:
        raise AssertionError("the model must not load before the token is checked")

    with pytest.raises(ConfigError) as caught:
        await run_async(settings, never)
    message = str(caught.value)
    assert "rejected SNAPFIND_BOT_TOKEN" in message and "\n" not in message
    assert wrong not in message
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert not [line for line in logged if wrong in line]
    assert any(MASK in line for line in logged)  # PTB did log the URL: redacted


async def test_no_form_of_the_token_reaches_the_log_while_serving_a_photo(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The download URL is logged percent-encoded by httpx, and inside the getFile result PTB
    logs and then completes (the capture formats records later, as a MemoryHandler does)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="httpx")  # its request lines carry the file URL
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("sofa", "red")))
        await results(server, USER)
    secret = TOKEN.split(":")[1]  # in every form: raw, percent-encoded, in a dict's repr
    assert server.count("getFile") == 1 and "/files/" in caplog.text  # the URL was logged
    assert secret not in caplog.text


def test_a_missing_or_malformed_token_is_one_actionable_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import token_of
    from bot.settings import BotSettings
    from retrieval.settings import load_settings

    with pytest.raises(ConfigError, match=r"SNAPFIND_BOT_TOKEN is not set.*@BotFather"):
        token_of(BotSettings(_env_file=None, bot_token=None, index_dir=tmp_path))
    secret_ish = "12345:short"
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(ConfigError) as caught:
        load_settings(BotSettings, bot_token=secret_ish)
    assert "does not look like a bot token" in str(caught.value)
    assert secret_ish not in str(caught.value)
