"""The conversation against the in-memory `FakeRetrieval`: no model, no index, no network.

The loopback suite (test_bot_e2e.py, test_bot_ops.py) runs the same code against the real
`SearchService` and a real Bot API server; these tests pin the flow itself, in milliseconds.
"""

import asyncio
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bot.buttons import NO_FILTER, Action, Press, photo_key, product_key
from bot.conversation import Conversation, Upload
from bot.decoding import Decoder
from bot.errors import QueryExpired
from bot.query_cache import QueryCache
from bot.rate_limit import RateLimiter
from bot.reload import IndexReloader
from bot.resources import BotResources
from bot.shared_state import LocalState
from bot.worker import InferenceWorker
from retrieval.results import Product
from tests.fake_retrieval import FakeRetrieval

ROOT = Path(__file__).resolve().parent.parent
CHAT, USER = 7, 70


@dataclass
class FakeBot:
    """Records what the conversation sends; `get_file` serves `files` by file id."""

    files: dict[str, bytes] = field(default_factory=dict)
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def send_chat_action(self, chat_id: int, action: str) -> None:
        pass

    async def get_file(self, file_id: str) -> "FakeFile":
        return FakeFile(self.files[file_id])

    async def send_message(
        self, chat_id: int, text: str, reply_markup=None, reply_parameters=None
    ) -> None:
        self.sent.append(
            ("sendMessage", {"chat_id": chat_id, "text": text, "markup": reply_markup})
        )

    def buttons(self) -> dict[str, str]:
        """Text → callback data of the last message with buttons."""
        markup = next(p["markup"] for _, p in reversed(self.sent) if p.get("markup"))
        return {b.text: b.callback_data for row in markup.inline_keyboard for b in row}

    def texts(self) -> list[str]:
        return [p["text"] for _, p in self.sent]


@dataclass
class FakeFile:
    data: bytes

    @property
    def file_size(self) -> int:
        return len(self.data)

    async def download_as_bytearray(self) -> bytearray:
        return bytearray(self.data)


def product(pid: str, category: str) -> Product:
    return Product(pid, pid.title(), (category,), None)  # no image: captions go as text


@pytest.fixture
def service() -> FakeRetrieval:
    kinds = ["sofa", "chair", "sofa", "lamp", "chair", "sofa", "bed", "chair"]
    return FakeRetrieval([product(f"p{i}", kind) for i, kind in enumerate(kinds)])


@pytest.fixture
async def chat(service: FakeRetrieval):
    worker = InferenceWorker(4)
    res = BotResources(
        service=service,
        worker=worker,
        decoder=Decoder(2),
        state=LocalState(QueryCache(10, 60.0), RateLimiter(100, 60.0)),
        reloader=IndexReloader(service),
        page_size=3,
    )
    worker.start()
    bot = FakeBot(files={"f1": b"p0"})
    yield Conversation(bot, res, CHAT, USER)  # type: ignore[arg-type]
    worker.stop()


def test_importing_the_bot_loads_neither_tensorflow_nor_faiss() -> None:
    modules = sorted(p.stem for p in (ROOT / "bot").glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import bot.{name}\n" for name in modules)
        + "print(sorted({'tensorflow', 'faiss', 'keras'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert len(modules) > 15 and out.stdout.strip() == "[]", out.stdout + out.stderr


async def test_a_photo_is_answered_and_its_query_cached_with_fixed_labels(
    chat: Conversation, service: FakeRetrieval
) -> None:
    await chat.answer_photo(Upload("f1", "u1", 2))
    bot: FakeBot = chat.bot  # type: ignore[assignment]
    assert bot.texts()[0].startswith("#1 P0") and "#3 P2" in bot.texts()[0]
    assert bot.texts()[-1] == "Matches 1–3. Tap a button for more."
    state = chat.res.state.cache.get(photo_key("u1"))
    assert state is not None and state.labels == ("bed", "chair", "lamp", "sofa")
    assert chat.res.stats.queries == 1 and service.calls == ["decode", "search_image"]


async def test_the_same_photo_again_reuses_the_cached_vector(
    chat: Conversation, service: FakeRetrieval
) -> None:
    await chat.answer_photo(Upload("f1", "u1", 2))
    await chat.answer_photo(Upload("f1", "u1", 2))
    assert service.calls == ["decode", "search_image", "search_vector"]
    assert chat.res.stats.cache_hits == 1


async def test_buttons_page_filter_and_pivot_from_the_cached_query(chat: Conversation) -> None:
    bot: FakeBot = chat.bot  # type: ignore[assignment]
    await chat.answer_photo(Upload("f1", "u1", 2))
    more = bot.buttons()["More ▸"]
    await chat.answer_press(_decode(more), None)
    assert bot.texts()[-1] == "Matches 4–6. Tap a button for more."

    await chat.answer_press(_decode(bot.buttons()["Only chair"]), None)
    assert bot.texts()[-1] == "Matches 1–3 in chair. Tap a button for more."
    assert all("chair" in line for line in bot.texts()[-2].split("\n\n"))

    await chat.answer_press(Press(Action.SIMILAR, photo_key("u1"), NO_FILTER, 0), None)
    assert bot.texts()[-1].startswith("Similar to #1 (P0). Matches 1–3.")
    pivot = chat.res.state.cache.get(product_key("p0"))
    assert pivot is not None and pivot.exclude == ("p0",)
    assert "#1 P0\n" not in bot.texts()[-2]


async def test_a_press_on_a_forgotten_query_or_label_expires(chat: Conversation) -> None:
    with pytest.raises(QueryExpired):
        await chat.answer_press(Press(Action.MORE, "gone", NO_FILTER, 3), None)
    await chat.answer_photo(Upload("f1", "u1", 2))
    with pytest.raises(QueryExpired):
        await chat.answer_press(Press(Action.FILTER, photo_key("u1"), 99, 0), None)


async def test_reloader_follows_published_releases_and_skips_broken_ones(
    service: FakeRetrieval,
) -> None:
    reloader = IndexReloader(service)
    service.published = "r2"
    assert (await reloader.reload()).release == "r2"
    service.published, service.broken = "r3", {"r3"}
    with pytest.raises(Exception, match="damaged"):
        await reloader.reload()
    assert service.describe().release == "r2"


def _decode(data: str) -> Press:
    from bot.buttons import decode

    return decode(data)


async def test_a_slow_decode_does_not_hold_up_another_users_photo(
    chat: Conversation, service: FakeRetrieval, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge upload decodes beside the inference thread: the next shopper does not wait."""
    entered, release = threading.Event(), threading.Event()
    decode = service.decode

    def slow_for_p1(data: bytes):
        if data == b"p1":  # the "huge PNG"
            entered.set()
            release.wait(10)
        return decode(data)

    monkeypatch.setattr(service, "decode", slow_for_p1)
    bot: FakeBot = chat.bot  # type: ignore[assignment]
    bot.files["huge"] = b"p1"
    hostile = asyncio.create_task(
        replace(chat, user_id=USER + 1).answer_photo(Upload("huge", "u-huge", 2))
    )
    assert await asyncio.to_thread(entered.wait, 10)  # its decode has started and hangs
    await chat.answer_photo(Upload("f1", "u1", 2))  # answered while that decode still runs
    assert not hostile.done() and bot.texts()[0].startswith("#1 P0")
    release.set()
    await hostile
    assert bot.texts()[-2].startswith("#1 P1")


async def test_a_photo_like_nothing_in_the_catalog_says_so_and_still_shows_the_closest(
    chat: Conversation, service: FakeRetrieval, monkeypatch: pytest.MonkeyPatch
) -> None:
    search_image = service.search_image

    def unlike_anything(*args, **kwargs):
        return replace(search_image(*args, **kwargs), no_match=True)

    monkeypatch.setattr(service, "search_image", unlike_anything)
    await chat.answer_photo(Upload("f1", "u1", 2))
    bot: FakeBot = chat.bot  # type: ignore[assignment]
    assert bot.texts()[0].startswith("#1 P0")  # the closest products all the same
    assert bot.texts()[-1].startswith("Nothing in the catalog looks much like this; ")


def test_products_sharing_a_picture_are_named_in_its_caption() -> None:
    from bot.captions import caption
    from retrieval.results import Hit

    hit = Hit(product("p1", "sofa"), 0.9, also_as=(product("p2", "sofa"), product("p3", "sofa")))
    assert caption(1, hit).splitlines()[2] == "Also as: P2, P3"
