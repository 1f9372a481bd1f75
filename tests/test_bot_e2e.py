"""The bot end to end: the real PTB Application, a real tiny index, the loopback Bot API.

Each test plays one or more users against the running bot and inspects exactly what the bot
sent to Telegram.
"""

import asyncio
import contextlib
import io
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.conversation import GETFILE_LIMIT
from bot.handlers import HELP, NOT_AN_IMAGE, PLEASE_PHOTO, UNSUPPORTED
from retrieval.extractor import Extractor
from retrieval.search import SearchService
from tests.telegram_api import BotApiServer, Call
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
from tests.telegram_api.shapes import CATEGORIES, COLOURS, draw, jpeg, png, title

USER = 1001


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch, tiny_extractor: Extractor) -> list[int]:
    """Counts network forward passes made for queries (one entry per embed_one call)."""
    ex = tiny_extractor
    calls: list[int] = []
    original = ex.embed_one

    def counting(image: np.ndarray) -> np.ndarray:
        calls.append(1)
        return original(image)

    monkeypatch.setattr(ex, "embed_one", counting)
    return calls


async def test_photo_is_answered_with_one_album_of_five(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        # the thumbnail is another picture: only the largest size may be searched
        await server.send_photo(
            USER, jpeg(draw("lamp", "blue")), thumb=jpeg(draw("chair", "red", size=24))
        )
        album, buttons = await results(server, USER)

    captions = album.captions()
    assert len(captions) == 5 and len(album.media_bytes()) == 5
    first = captions[0].splitlines()
    assert first[0] == "#1 Blue lamp"
    assert first[1].startswith("lamp · ") and first[1].endswith("% similar")
    assert int(first[1].split("· ")[1].split("%")[0]) >= 95
    assert first[2] == "Price: 112 EUR"
    assert first[3] == "https://shop.example/p/lamp-blue"
    assert [c.split()[0] for c in captions] == ["#1", "#2", "#3", "#4", "#5"]
    assert all(len(c) <= 1024 for c in captions)
    image = shapes_index.catalog.parent / "images" / "lamp-blue.png"
    assert album.media_bytes()[0] == image.read_bytes()
    assert any(c.method == "sendChatAction" and c.chat_id == USER for c in server.calls)
    labels = [label for label, _ in buttons.buttons()]
    assert [f"Similar to #{n}" for n in range(1, 6)] == labels[:5]
    assert "Only lamp" in labels and labels[-1] == "More ▸"
    assert all(len(data.encode()) < 64 for _, data in buttons.buttons())
    assert buttons.params["text"].startswith("Matches 1–5")


async def test_start_and_help_explain_the_bot(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_text(USER, "/start")
        assert await text_reply(server, USER, 0) == HELP
        mark = len(server.calls)
        await server.send_text(USER, "/help")
        assert await text_reply(server, USER, mark) == HELP


async def test_image_sent_as_a_file_is_searched(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_document(
            USER, png(draw("bed", "green")), file_name="bed.png", mime_type="image/png"
        )
        album, _ = await results(server, USER)
        assert album.captions()[0].startswith("#1 Green bed")
        # a phone may send an image with a generic type: the extension decides
        mark = len(server.calls)
        await server.send_document(
            USER,
            jpeg(draw("rug", "black")),
            file_name="IMG_1.JPG",
            mime_type="application/octet-stream",
        )
        album, _ = await results(server, USER, mark)
        assert album.captions()[0].startswith("#1 Black rug")


def _huge_png() -> bytes:
    """A tiny file that decodes to 64 megapixels: a decompression bomb in miniature."""
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, "PNG")
    return out.getvalue()


async def test_every_bad_input_gets_a_short_helpful_reply(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    good = png(draw("sofa", "red"))
    sticker = {
        **server.add_file(b"webp"),
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    video = {**server.add_file(b"mp4"), "width": 64, "height": 64, "duration": 3}
    voice = {**server.add_file(b"ogg"), "duration": 2}
    big_unsized = server.add_file(b"x", size=GETFILE_LIMIT + 1)
    cases = [
        ("text", lambda u: server.send_text(u, "do you have red sofas?"), PLEASE_PHOTO),
        ("command", lambda u: server.send_text(u, "/frobnicate"), PLEASE_PHOTO),
        ("sticker", lambda u: server.send_message(u, sticker=sticker), UNSUPPORTED["sticker"]),
        ("video", lambda u: server.send_message(u, video=video), UNSUPPORTED["video"]),
        ("voice", lambda u: server.send_message(u, voice=voice), UNSUPPORTED["voice"]),
        (
            "location",
            lambda u: server.send_message(u, location={"latitude": 1.0, "longitude": 2.0}),
            PLEASE_PHOTO,
        ),
        (
            "pdf",
            lambda u: server.send_document(
                u, b"%PDF-1.4", file_name="a.pdf", mime_type="application/pdf"
            ),
            NOT_AN_IMAGE,
        ),
        (
            "corrupt jpeg file",
            lambda u: server.send_document(
                u, b"\xff\xd8\xff\xe0garbage", file_name="x.jpg", mime_type="image/jpeg"
            ),
            "damaged",
        ),
        ("truncated photo", lambda u: server.send_photo(u, good[: len(good) // 2]), "damaged"),
        ("not an image photo", lambda u: server.send_photo(u, b"hello"), "couldn't read"),
        (
            "empty file",
            lambda u: server.send_document(u, b"", file_name="e.png", mime_type="image/png"),
            "couldn't read",
        ),
        (
            "svg",
            lambda u: server.send_document(
                u,
                b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                file_name="a.svg",
                mime_type="image/svg+xml",
            ),
            "couldn't read",
        ),
        ("bomb", lambda u: server.send_photo(u, _huge_png()), "too large"),
        (
            "over 20 MB declared",
            lambda u: server.send_document(
                u, b"x", file_name="big.jpg", mime_type="image/jpeg", size=GETFILE_LIMIT + 1
            ),
            "too big",
        ),
        (
            "over 20 MB at getFile",
            lambda u: server.send_message(
                u,
                photo=[
                    {
                        "file_id": big_unsized["file_id"],
                        "file_unique_id": big_unsized["file_unique_id"],
                        "width": 4000,
                        "height": 3000,
                    }
                ],
            ),
            "too big",
        ),
    ]
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        for number, (name, send, expected) in enumerate(cases):
            user = 2000 + number
            await send(user)
            reply = await text_reply(server, user, 0)
            assert expected in reply, f"{name}: {reply!r}"
            assert len(reply) < 200, name
            assert not [c for c in server.sent_to(user) if c.method == "sendMediaGroup"], name
        # still serving after all of that
        await server.send_photo(USER, good)
        album, _ = await results(server, USER)
        assert album.captions()[0].startswith("#1 Red sofa")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_an_animation_is_told_to_send_a_still_photo(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    """Telegram turns a GIF into an MPEG-4 animation and sends a document beside it."""
    clip = {**server.add_file(b"mp4"), "file_name": "sofa.gif.mp4", "mime_type": "video/mp4"}
    animation = {**clip, "width": 64, "height": 64, "duration": 2}
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_message(USER, animation=animation, document=clip)
        assert await text_reply(server, USER, 0) == UNSUPPORTED["animation"]
        mark = len(server.calls)  # a GIF sent as a file stays an image: its first frame
        gif = io.BytesIO()
        draw("sofa", "red").save(gif, "GIF")
        await server.send_document(USER, gif.getvalue(), file_name="s.gif", mime_type="image/gif")
        album, _ = await results(server, USER, mark)
    assert album.captions()[0].startswith("#1 Red sofa")


async def test_a_file_over_the_limit_is_never_downloaded_whatever_the_server_allows(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    """A self-hosted Bot API server answers getFile for files up to 2000 MB; the photo's
    message does not say its size."""
    server.getfile_limit = 2000 * 1024 * 1024
    big = server.add_file(png(draw("sofa", "red")), size=GETFILE_LIMIT + 1)
    photo = {"file_id": big["file_id"], "file_unique_id": big["file_unique_id"]}
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_message(USER, photo=[{**photo, "width": 4000, "height": 3000}])
        reply = await text_reply(server, USER, 0)
    assert "too big" in reply and server.count("getFile") == 1
    assert server.downloads == []


async def test_more_filter_and_similar_buttons_reuse_the_query_vector(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService, extractions: list[int]
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("sofa", "red")))
        first, buttons = await results(server, USER)
        first_titles = [c.splitlines()[0].split(" ", 1)[1] for c in first.captions()]

        mark = len(server.calls)
        await server.press(USER, buttons.result, button(buttons, "More ▸"))
        more, more_buttons = await results(server, USER, mark)
        assert [c.split()[0] for c in more.captions()] == ["#6", "#7", "#8", "#9", "#10"]
        more_titles = [c.splitlines()[0].split(" ", 1)[1] for c in more.captions()]
        assert not set(more_titles) & set(first_titles)
        assert more_buttons.params["text"].startswith("Matches 6–10")
        edit = await server.reply(USER, "editMessageReplyMarkup", start=mark)
        assert "More ▸" not in [
            b["text"]
            for row in edit.params.get("reply_markup", {}).get("inline_keyboard", [])
            for b in row
        ]
        assert server.count("answerCallbackQuery") == 1

        mark = len(server.calls)
        await server.press(USER, buttons.result, button(buttons, "Only sofa"))
        only, only_buttons = await results(server, USER, mark)
        assert len(only.captions()) == 4  # the catalog has four sofas
        assert all(c.splitlines()[1].startswith("sofa · ") for c in only.captions())
        assert only_buttons.params["text"] == "Matches 1–4 in sofa. Tap a button for more."
        labels = [label for label, _ in only_buttons.buttons()]
        assert "All categories" in labels and "More ▸" not in labels

        mark = len(server.calls)
        await server.press(USER, buttons.result, button(buttons, "Similar to #2"))
        similar, similar_buttons = await results(server, USER, mark)
        source = first_titles[1]
        assert similar_buttons.params["text"].startswith(f"Similar to #2 ({source}).")
        similar_titles = [c.splitlines()[0].split(" ", 1)[1] for c in similar.captions()]
        assert source not in similar_titles and len(similar_titles) == 5

        # buttons under the "similar" results work from the product's stored vector too
        mark = len(server.calls)
        await server.press(USER, similar_buttons.result, button(similar_buttons, "More ▸"))
        again, _ = await results(server, USER, mark)
        assert again.captions()[0].startswith("#6 ")
    assert len(extractions) == 1


async def test_a_press_telegram_no_longer_lets_us_answer_is_still_served(
    server: BotApiServer,
    shapes_index: BuiltIndex,
    service: SearchService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A press that waited (a busy bot, a restart) is past answerCallbackQuery's time limit."""
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_photo(USER, png(draw("sofa", "red")))
        _, buttons = await results(server, USER)
        server.inject("answerCallbackQuery", "400")
        mark = len(server.calls)
        await server.press(USER, buttons.result, button(buttons, "More ▸"))
        first = await server.wait_for(
            lambda c: c.chat_id == USER and c.method in {"sendMessage", "sendMediaGroup"},
            start=mark,
        )
        assert first.method == "sendMediaGroup", first.params.get("text")
        assert first.captions()[0].startswith("#6 ")
        await results(server, USER, mark)
    assert server.faults_served == [("answerCallbackQuery", "400")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_double_tap_sends_one_album(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service) as running:
        await server.send_photo(USER, png(draw("sofa", "red")))
        _, buttons = await results(server, USER)
        more = button(buttons, "More ▸")
        album_sent = server.hold("sendMediaGroup")  # the first press stays in flight
        mark = len(server.calls)
        try:
            await server.press(USER, buttons.result, more)
            await server.reply(USER, "editMessageReplyMarkup", start=mark)  # it is under way
            await server.press(USER, buttons.result, more)
            await until(lambda: running.res.stats.refused.get("repeated press") == 1)
        finally:
            album_sent.set()
        album, _ = await results(server, USER, mark)
        assert album.captions()[0].startswith("#6 ")
        # pressed again once answered: that is a new press, served
        await server.press(USER, buttons.result, more)
        await results(server, USER, server.calls.index(album) + 1)
    albums = [c for c in server.sent_to(USER, mark) if c.method == "sendMediaGroup"]
    assert len(albums) == 2 and server.count("answerCallbackQuery") == 3
    assert running.res.state.presses == set()  # every claim released


async def test_same_photo_again_is_answered_from_the_cache(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService, extractions: list[int]
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    photo = jpeg(draw("table", "blue"))
    async with running_bot(settings, service) as running:
        await server.send_photo(USER, photo, unique_id="AQADsame")
        first, _ = await results(server, USER)
        mark = len(server.calls)
        await server.send_photo(USER, photo, unique_id="AQADsame")
        second, _ = await results(server, USER, mark)
    assert running.res.stats.cache_hits == 1 and running.res.stats.queries == 2
    assert second.captions() == first.captions()
    assert len(extractions) == 1
    assert server.count("getFile") == 1


async def test_a_button_of_a_forgotten_search_says_so(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        await server.send_text(USER, "/start")
        start = await server.reply(USER, "sendMessage")
        for data in ("m|gone|-1|5", "nonsense", "s|x|7|0"):
            mark = len(server.calls)
            await server.press(USER, start.result, data)
            assert "expired" in await text_reply(server, USER, mark)


async def test_missing_catalog_image_falls_back_to_text(
    server: BotApiServer, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    built = build(tmp_path, tiny_extractor)
    (built.catalog.parent / "images" / "chair-red.png").unlink()
    settings = bot_settings(server, built.index_dir)
    async with running_bot(settings, service_for(built.index_dir, tiny_extractor)):
        await server.send_photo(USER, png(draw("chair", "red")))
        album, buttons = await results(server, USER)
    assert len(album.captions()) == 4
    assert "chair-red" not in " ".join(album.captions())
    text = next(
        c
        for c in server.sent_to(USER)
        if c.method == "sendMessage" and c is not buttons and "reply_markup" not in c.params
    )
    assert text.params["text"].startswith(f"#1 {title('chair', 'red')}")
    assert "https://shop.example/p/chair-red" in text.params["text"]


async def test_a_catalog_image_turned_into_a_fifo_costs_a_text_line_not_a_hang(
    server: BotApiServer, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """A catalog file changed after the build is read bounded: a FIFO would block a plain
    read until someone writes to it."""
    built = build(tmp_path, tiny_extractor)
    fifo = built.catalog.parent / "images" / "chair-red.png"
    fifo.unlink()
    os.mkfifo(fifo)
    settings = bot_settings(server, built.index_dir)
    async with running_bot(settings, service_for(built.index_dir, tiny_extractor)):
        try:
            await server.send_photo(USER, png(draw("chair", "red")))
            album, _ = await results(server, USER)
        finally:  # lets a reader blocked on the FIFO go (the old code), so the bot can stop
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert len(album.captions()) == 4 and "Red chair" not in " ".join(album.captions())
    listed = [c.params["text"] for c in server.sent_to(USER) if c.method == "sendMessage"]
    assert listed[0].startswith(f"#1 {title('chair', 'red')}")


async def test_twenty_users_at_once_each_get_their_own_answer(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    products = [(c, k) for c in CATEGORIES for k in COLOURS][:20]
    settings = bot_settings(server, shapes_index.index_dir)
    async with running_bot(settings, service):
        for number, (category, colour) in enumerate(products):
            await server.send_photo(3000 + number, png(draw(category, colour)))
        for number, (category, colour) in enumerate(products):
            album, _ = await results(server, 3000 + number)
            assert album.captions()[0].startswith(f"#1 {title(category, colour)}\n")
    for number in range(20):
        albums = [c for c in server.sent_to(3000 + number) if c.method == "sendMediaGroup"]
        assert len(albums) == 1


async def test_each_answer_to_an_album_of_photos_quotes_its_photo(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    """Sent at once, an album's answers interleave; the quote says which photo each answers,
    the rate limit's refusal of one of them included."""
    shown = {"sofa": "#1 Red sofa", "lamp": "#1 Red lamp", "bed": "#1 Red bed"}
    settings = bot_settings(server, shapes_index.index_dir, rate_limit=2)
    async with running_bot(settings, service):
        photos = {}
        for category in shown:
            ref = server.add_file(png(draw(category, "red")))
            size = {**ref, "width": 96, "height": 96}
            sent = await server.send_message(USER, photo=[size], media_group_id="album1")
            photos[sent["message"]["message_id"]] = category
        refusal = await server.wait_for(
            lambda c: c.chat_id == USER and "a lot of searches" in c.params.get("text", "")
        )
        answered = [await results(server, USER)]
        answered.append(await results(server, USER, server.calls.index(answered[0][1]) + 1))
        await server.send_photo(USER + 1, png(draw("rug", "red")))  # a photo on its own
        alone = await results(server, USER + 1)
    assert all("reply_parameters" not in call.params for call in alone)

    def quoted(call: Call) -> str:
        return photos[call.params["reply_parameters"]["message_id"]]

    assert quoted(refusal) not in {quoted(album) for album, _ in answered}
    for album, buttons in answered:
        assert album.captions()[0].startswith(shown[quoted(album)] + "\n")
        assert quoted(buttons) == quoted(album)


async def test_busy_queue_gets_a_polite_refusal(
    server: BotApiServer, shapes_index: BuiltIndex, service: SearchService
) -> None:
    settings = bot_settings(server, shapes_index.index_dir, queue_size=1)
    release = threading.Event()
    async with running_bot(settings, service) as running:
        blocker = asyncio.create_task(running.res.worker.run(release.wait, 30))
        await server.send_photo(USER, png(draw("rug", "red")))  # waits behind the blocker
        async with asyncio.timeout(60):  # a bound on the wait, not a wait: loaded CI machines
            while running.res.worker.pending < 1:
                await asyncio.sleep(0.02)
        await server.send_photo(USER + 1, png(draw("rug", "blue")))  # the queue is full
        reply = await text_reply(server, USER + 1, 0)
        assert "busy" in reply
        release.set()
        await blocker
        album, _ = await results(server, USER)
        assert album.captions()[0].startswith("#1 Red rug")
