"""Room photos in the bot, end to end: numbered boxes, one button per object, albums per object.

The real PTB Application talks real HTTP to the loopback Bot API; retrieval is the in-memory
`FakeRetrieval`, whose rooms hold 1-3 catalog products as objects, so each test knows what
every album must show and can count the searches (a forward pass is `search_image` or
`search_objects`; pages and presses are `search_vector`).
"""

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.buttons import PhotoObject, QueryState, decode, objects_keyboard, photo_key
from bot.query_cache import QueryCache
from bot.rate_limit import RateLimiter
from bot.redis_state import decode_state, encode_state
from bot.shared_state import LocalState
from retrieval.annotate import COLOURS, REPLY_BYTES, REPLY_SIDE, annotated_jpeg
from retrieval.results import Product
from tests.fake_retrieval import FakeRetrieval
from tests.telegram_api import BotApiServer
from tests.telegram_api.harness import (
    RunningBot,
    bot_settings,
    button,
    results,
    running_bot,
    text_reply,
    until,
)
from tests.telegram_api.server import Call
from tests.telegram_api.shapes import CATEGORIES, draw, png, title
from tests.telegram_api.shapes import COLOURS as INKS

USER, OTHER = 3001, 3002
ROOMS = {
    "room:living": ("sofa-red", "lamp-blue", "chair-green"),
    "room:pair": ("bed-black", "rug-red"),
    "room:corner": ("table-blue",),  # one object: answered as any photo
}
FORWARD = {"search_image", "search_objects"}  # the calls that run the network


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(tmp_path: Path) -> FakeRetrieval:
    """The shapes catalog (24 products, each with its picture) and the rooms above."""
    products = []
    for category in CATEGORIES:
        for colour in INKS:
            image = tmp_path / f"{category}-{colour}.png"
            image.write_bytes(png(draw(category, colour)))
            products.append(
                Product(f"{category}-{colour}", title(category, colour), (category,), image)
            )
    return FakeRetrieval(products, rooms=dict(ROOMS))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(
    server: BotApiServer, fake: FakeRetrieval, tmp_path: Path, clock: Clock
) -> AsyncIterator[RunningBot]:
    """The bot with object search on; its query cache runs on `clock`, which the test moves."""
    settings = bot_settings(server, tmp_path / "index", objects=True)
    async with running_bot(settings, fake) as running:  # type: ignore[arg-type]
        limiter = RateLimiter(settings.rate_limit, settings.rate_window)
        running.res.state = LocalState(QueryCache(100, 60.0, clock=clock), limiter)
        yield running


async def room_reply(server: BotApiServer, start: int = 0) -> tuple[Call, Call, Call]:
    """The annotated photo, then the first object's album and its buttons message."""
    picture = await server.reply(USER, "sendPhoto", start=start)
    album, buttons = await results(server, USER, server.calls.index(picture))
    return picture, album, buttons


async def press(server: BotApiServer, user: int, under: Call, text: str) -> int:
    """`user` presses the button `text` under the message `under`; returns the call mark."""
    mark = len(server.calls)
    await server.press(user, under.result, button(under, text))
    return mark


def picture_of(call: Call) -> Image.Image:
    [data] = call.files.values()
    assert len(data) <= REPLY_BYTES
    return Image.open(io.BytesIO(data))


def near(pixel: tuple[int, ...], colour: str, tolerance: int = 60) -> bool:
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, want, strict=True))


async def test_a_room_photo_gets_numbered_boxes_and_at_once_the_first_objects_album(
    server: BotApiServer, bot: RunningBot, fake: FakeRetrieval
) -> None:
    await server.send_photo(USER, b"room:living")
    picture, album, buttons = await room_reply(server)

    labels = [label for label, _ in picture.buttons()]
    assert labels == ["1 · sofa", "2 · lamp", "3 · chair", "Whole photo"]
    assert all(len(data.encode()) <= 64 for _, data in picture.buttons())
    assert picture.params["caption"].startswith("I see 3 things here.")
    drawn = picture_of(picture)
    assert drawn.format == "JPEG" and max(drawn.size) == REPLY_SIDE
    scale = REPLY_SIDE / 320  # the fake room is 320 px wide; object i spans x = 100·i+5 … +95
    for i, colour in enumerate(COLOURS[:3]):
        edge = (round((100 * i + 5) * scale) + 1, drawn.height // 2)
        assert near(drawn.convert("RGB").getpixel(edge), colour), (i, edge)
    assert drawn.convert("RGB").getpixel((drawn.width - 5, drawn.height // 2))[0] < 40  # no box

    assert album.captions()[0].startswith("#1 Red sofa")
    assert buttons.params["text"] == "1 · sofa: Matches 1–5. Tap a button for more."
    assert fake.calls == ["decode", "search_objects"]  # the finder's own page: no re-search
    assert server.count("getFile") == 1


@pytest.mark.parametrize("shared", ["memory", "redis"])
async def test_an_objects_button_sends_its_album_from_the_cached_vector(
    server: BotApiServer, fake: FakeRetrieval, tmp_path: Path, request, shared: str
) -> None:
    extra = {}
    if shared == "redis":  # another replica may take the press: the objects live in Redis
        extra["redis_url"] = request.getfixturevalue("redis_server").url
    settings = bot_settings(server, tmp_path / "index", objects=True, **extra)
    async with running_bot(settings, fake):  # type: ignore[arg-type]
        await server.send_photo(USER, b"room:living")
        picture, *_ = await room_reply(server)
        searched, downloads = list(fake.calls), server.count("getFile")

        mark = await press(server, USER, picture, "2 · lamp")
        album, buttons = await results(server, USER, mark)
        assert album.captions()[0].startswith("#1 Blue lamp")
        assert buttons.params["text"] == "2 · lamp: Matches 1–5. Tap a button for more."

        mark = await press(server, USER, buttons, "More ▸")  # the object's own pages
        album, more = await results(server, USER, mark)
        assert [c.split()[0] for c in album.captions()] == ["#6", "#7", "#8", "#9", "#10"]
        assert more.params["text"] == "Matches 6–10. Tap a button for more."

        mark = await press(server, USER, buttons, "Only lamp")
        album, only = await results(server, USER, mark)
        assert all(c.splitlines()[1].startswith("lamp · ") for c in album.captions())
        assert only.params["text"] == "Matches 1–4 in lamp. Tap a button for more."

    assert server.count("getFile") == downloads == 1
    assert fake.calls[: len(searched)] == searched
    assert not FORWARD & set(fake.calls[len(searched) :])  # presses never ran the network
    # ranked as the album, led by the kind its button names (kept in Redis too)
    assert set(fake.calls[len(searched) :]) == {"search_object_vector lamp"}


async def test_whole_photo_and_the_same_photo_again_need_no_forward_pass(
    server: BotApiServer, bot: RunningBot, fake: FakeRetrieval
) -> None:
    await server.send_photo(USER, b"room:pair", unique_id="AQADpair")
    picture, *_ = await room_reply(server)

    mark = await press(server, USER, picture, "Whole photo")
    album, buttons = await results(server, USER, mark)
    assert buttons.params["text"] == "Whole photo: Matches 1–5. Tap a button for more."
    top = {c.splitlines()[0] for c in album.captions()[:2]}
    assert top == {"#1 Black bed", "#2 Red rug"}  # the whole room: both of its products

    mark = len(server.calls)  # sent again: the boxes' buttons (as text) and the first album
    await server.send_photo(USER, b"room:pair", unique_id="AQADpair")
    again = await server.reply(USER, "sendMessage", start=mark)
    assert [label for label, _ in again.buttons()] == ["1 · bed", "2 · rug", "Whole photo"]
    album, _ = await results(server, USER, server.calls.index(again))
    assert album.captions()[0].startswith("#1 Black bed")
    assert fake.calls.count("search_objects") == 1 and "search_image" not in fake.calls
    await until(lambda: bot.res.stats.cache_hits == 1)  # counted once the reply is sent
    assert server.count("getFile") == 1


async def test_a_press_after_the_search_expired_or_by_someone_else_says_expired(
    server: BotApiServer, bot: RunningBot, fake: FakeRetrieval, clock: Clock
) -> None:
    await server.send_photo(USER, b"room:living")
    picture, *_ = await room_reply(server)

    mark = await press(server, OTHER, picture, "2 · lamp")  # only the asker may press
    assert "expired" in await text_reply(server, USER, mark)  # in the chat of the message

    data = button(picture, "3 · chair").replace("|3", "|7")  # an object the photo never had
    mark = len(server.calls)
    await server.press(USER, picture.result, data)
    assert "expired" in await text_reply(server, USER, mark)

    clock.now += 61  # past the cache's 60 s: the query has left the cache
    mark = await press(server, USER, picture, "2 · lamp")
    assert await text_reply(server, USER, mark) == (
        "That search has expired. Please send the photo again."
    )
    assert "search_vector" not in fake.calls  # no press searched; the first album is the finder's


@pytest.mark.parametrize("upload", [b"room:corner", b"sofa-red"])
async def test_a_photo_with_one_object_or_none_is_answered_as_today(
    server: BotApiServer, bot: RunningBot, fake: FakeRetrieval, upload: bytes
) -> None:
    await server.send_photo(USER, upload)
    album, buttons = await results(server, USER)
    assert server.count("sendPhoto") == 0
    assert buttons.params["text"] == "Matches 1–5. Tap a button for more."
    labels = [label for label, _ in buttons.buttons()]
    assert labels[0] == "Similar to #1" and labels[-1] == "More ▸"
    assert not any("·" in label or label == "Whole photo" for label in labels)
    expected = "#1 Blue table" if upload == b"room:corner" else "#1 Red sofa"
    assert album.captions()[0].startswith(expected)
    state = bot.res.state.cache.get(photo_key(last_upload(server)))
    assert state is not None and state.objects == ()


def last_upload(server: BotApiServer) -> str:
    """The file_unique_id of the last file the bot downloaded."""
    return [c for c in server.calls if c.method == "getFile"][-1].result["file_unique_id"]


def test_objects_survive_the_trip_through_redis_fields() -> None:
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    state = QueryState(
        vectors.sum(axis=0),
        ("lamp", "sofa"),
        owners=frozenset({5}),
        objects=tuple(map(PhotoObject, "abc", vectors, ("a", "", ""))),  # object 1 led by "a"
    )
    stored = encode_state(state).items()  # as Redis hands hash fields back: all bytes
    fields = {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in stored}
    back = decode_state(fields)
    assert [o.label for o in back.objects] == ["a", "b", "c"]
    assert [o.kind for o in back.objects] == ["a", "", ""]
    assert all(np.array_equal(o.vector, v) for o, v in zip(back.objects, vectors, strict=True))
    assert np.array_equal(back.vector, state.vector) and back.owners == state.owners
    kinds = fields.pop(b"object_kinds")  # stored by a replica from before: no kind leads
    assert [o.kind for o in decode_state(fields).objects] == ["", "", ""]
    fields[b"object_kinds"] = b'["a"]'  # fewer kinds than objects: refused
    with pytest.raises(ValueError):
        decode_state(fields)
    fields[b"object_kinds"] = kinds
    fields[b"objects"] = fields[b"objects"][:-4]  # a cut-off value is refused, not misread
    with pytest.raises(ValueError):
        decode_state(fields)
    del fields[b"objects"], fields[b"object_labels"]  # stored by a replica without objects
    assert decode_state(fields).objects == ()


def test_an_object_albums_state_keeps_its_ranking_through_redis_fields() -> None:
    """A press on another replica pages an object's album as the album was ranked."""
    for of_object, kind in ((True, "lamp"), (False, "")):
        state = QueryState(np.ones(4, np.float32) / 2, ("lamp",), of_object=of_object, kind=kind)
        stored = encode_state(state).items()
        fields = {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in stored}
        assert (decode_state(fields).of_object, decode_state(fields).kind) == (of_object, kind)
    del fields[b"of_object"], fields[b"kind"]  # stored by a replica from before: plain pages
    assert (decode_state(fields).of_object, decode_state(fields).kind) == (False, "")


def test_object_buttons_fit_telegrams_64_bytes_with_the_longest_key_and_labels() -> None:
    key = photo_key("Ü" * 40)  # a long id is hashed; the longest kept is 40 characters
    objects = tuple(PhotoObject("ü" * 200, np.zeros(4, np.float32)) for _ in range(5))
    state = QueryState(np.zeros(4, np.float32), (), objects=objects)
    for longest in (key, "A" * 40):
        pressed = [
            b.callback_data for row in objects_keyboard(longest, state).inline_keyboard for b in row
        ]
        assert len(pressed) == 6 and all(len(d.encode()) <= 64 for d in pressed)
        assert [decode(d).number for d in pressed] == [1, 2, 3, 4, 5, 0]


def test_the_annotated_photo_stays_within_its_byte_bound() -> None:
    noise = np.random.default_rng(1).integers(0, 256, size=(900, 1200, 3), dtype=np.uint8)
    boxes = [((10, 10, 300, 300), "sofa"), ((400, 100, 900, 800), "lamp")]
    data = annotated_jpeg(noise, boxes, max_bytes=60_000)
    with Image.open(io.BytesIO(data)) as drawn:
        assert drawn.format == "JPEG" and max(drawn.size) < REPLY_SIDE  # shrunk to fit
    assert len(data) <= 60_000


@pytest.mark.parametrize("objects", [True, False])
def test_snapfind_bot_builds_object_search_before_serving_only_when_on(
    fake: FakeRetrieval, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, objects: bool
) -> None:
    from bot.settings import BotSettings
    from snapfind.commands import bot as command

    monkeypatch.setattr(command, "load_or_build", lambda settings: fake)
    settings = BotSettings(_env_file=None, index_dir=tmp_path, objects=objects)
    assert command.serving(settings) is fake
    assert fake.calls == (["search_objects"] if objects else [])


@pytest.mark.parametrize("off", [True, False])
def test_snapfind_bot_says_object_search_is_ready_only_when_it_is(
    fake: FakeRetrieval,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    off: bool,
) -> None:
    from bot.settings import BotSettings
    from snapfind.commands import bot as command

    fake.objects_off = off
    monkeypatch.setattr(command, "load_or_build", lambda settings: fake)
    with caplog.at_level(logging.INFO, logger=command.log.name):
        command.serving(BotSettings(_env_file=None, index_dir=tmp_path, objects=True))
    said = [r for r in caplog.records if "object search ready" in r.getMessage()]
    assert len(said) == (0 if off else 1)
