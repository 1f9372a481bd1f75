"""Unit tests of the bot's small parts: payloads, cache, limits, captions, keyboard, settings,
log redaction, the worker and the retry policy. No network, no model."""

import asyncio
import io
import logging
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.buttons import (
    MAX_BYTES,
    MAX_RESULTS,
    NO_FILTER,
    Action,
    PhotoObject,
    Press,
    QueryState,
    decode,
    encode,
    objects_keyboard,
    photo_key,
    results_keyboard,
    without_more,
)
from bot.captions import CAPTION_LIMIT, caption, objects_caption, results_header, similarity_percent
from bot.errors import Busy
from bot.product_photos import PHOTO_LIMIT, load_photo
from bot.query_cache import QueryCache
from bot.rate_limit import RateLimiter
from bot.redaction import MASK, redact_in_logs
from bot.replies import _chunks
from bot.retry import RetryingRequests
from bot.settings import BotSettings
from bot.stats import Stats
from bot.worker import InferenceWorker
from retrieval.errors import ConfigError
from retrieval.results import Hit, Product
from retrieval.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hit(pid: str, score: float = 0.9, categories: tuple[str, ...] = ("sofa",), **kw) -> Hit:
    return Hit(Product(pid, kw.pop("title", pid.title()), categories, None, **kw), score)


# ---- callback data ----------------------------------------------------------------------


def test_callback_data_round_trips_and_stays_under_64_bytes() -> None:
    longest_key = photo_key("A" * 40)
    for press in (
        Press(Action.MORE, longest_key, 999, MAX_RESULTS),
        Press(Action.FILTER, longest_key, NO_FILTER, 0),
        Press(Action.SIMILAR, longest_key, 12, 49),
    ):
        data = encode(press)
        assert len(data.encode()) <= MAX_BYTES
        assert decode(data) == press


def test_long_or_odd_file_unique_ids_are_hashed_into_short_keys() -> None:
    assert photo_key("AQADx2sxG") == "AQADx2sxG"
    long_key = photo_key("x" * 300)
    assert len(long_key) < 40 and long_key == photo_key("x" * 300)
    assert "|" not in photo_key("a|b")


@pytest.mark.parametrize(
    "data", ["", "m", "m|k|0", "x|k|0|0", "m||0|0", "m|k|a|0", "m|k|-2|0", "m|k|0|-1", "m|k|0|0|0"]
)
def test_foreign_callback_data_is_rejected(data: str) -> None:
    with pytest.raises(ValueError):
        decode(data)


def test_encode_refuses_a_payload_telegram_would_reject() -> None:
    with pytest.raises(ValueError):
        encode(Press(Action.MORE, "k" * 70))


# ---- query cache ------------------------------------------------------------------------


def test_query_cache_evicts_least_recently_used() -> None:
    cache: QueryCache[int] = QueryCache(max_size=2, ttl=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_query_cache_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache: QueryCache[int] = QueryCache(max_size=10, ttl=30, clock=clock)
    cache.put("a", 1)
    clock.now += 29
    assert cache.get("a") == 1  # reading does not extend its life
    clock.now += 1
    assert cache.get("a") is None and len(cache) == 0


# ---- rate limit -------------------------------------------------------------------------


def test_rate_limit_counts_per_user_in_a_sliding_window() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=2, window=10, clock=clock)
    assert limiter.acquire(1) == 0 and limiter.acquire(1) == 0
    clock.now += 4
    assert limiter.acquire(1) == pytest.approx(6)
    assert limiter.acquire(2) == 0  # another user is not affected
    clock.now += 6
    assert limiter.acquire(1) == 0


def test_rate_limit_forgets_idle_users() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=1, window=10, clock=clock)
    for user in range(100):
        limiter.acquire(user)
    clock.now += 11
    limiter.acquire(1000)
    assert len(limiter._recent) == 1


# ---- captions and header ----------------------------------------------------------------


def test_caption_has_title_category_similarity_price_and_link() -> None:
    text = caption(
        3,
        hit("p1", 0.876, ("sofa", "outdoor"), title="Kivik", price="499 EUR", url="https://x/p1"),
    )
    assert text == "#3 Kivik\nsofa, outdoor · 88% similar\nPrice: 499 EUR\nhttps://x/p1"


def test_caption_never_exceeds_telegram_limit_and_never_cuts_a_link() -> None:
    long = hit(
        "p", 1.0, ("c" * 900,), title="t" * 5000, price="9" * 500, url="https://x/" + "u" * 300
    )
    text = caption(1, long)
    assert len(text) <= CAPTION_LIMIT
    assert "https://x/" not in text or text.endswith("u" * 300)
    assert caption(1, hit("p", 0.5, (), title="", url=None)).startswith("#1 p\n50% similar")


@pytest.mark.parametrize(("score", "percent"), [(1.2, 100), (-0.3, 0), (0.444, 44)])
def test_similarity_is_a_clamped_percentage(score: float, percent: int) -> None:
    assert similarity_percent(score) == percent


def test_results_header_says_what_is_shown() -> None:
    assert results_header(0, 5, None) == "Matches 1–5. Tap a button for more."
    assert results_header(5, 3, "lamp") == "Matches 6–8 in lamp. Tap a button for more."
    assert results_header(0, 0, "lamp") == "No matches in lamp."
    assert results_header(10, 0, None) == "No more matches."


def test_a_folder_names_underscores_read_as_spaces_wherever_a_shopper_sees_it() -> None:
    """Categories are often folder names (`chest_of_drawers`); the callback data keeps the
    category's number, so a filter still names the catalog's own category."""
    assert caption(1, hit("p", 0.5, ("chest_of_drawers",), title="Malm")).splitlines()[1] == (
        "chest of drawers · 50% similar"
    )
    assert results_header(0, 0, "stool_bench") == "No matches in stool bench."
    assert objects_caption(["plant_pot", "rug"]).startswith(
        "I see 2 things here. Below: matches for 1 · plant pot."
    )
    state = QueryState(
        np.zeros(4, np.float32),
        labels=("stool_bench",),
        objects=(PhotoObject("stool_bench", np.zeros(4, np.float32)),),
    )
    only = _buttons(
        results_keyboard("k", state, [hit("a", categories=("stool_bench",))], 0, NO_FILTER, 5)
    )
    assert ("Only stool bench", "f|k|0|0") in only and state.label(0) == "stool_bench"
    assert _buttons(objects_keyboard("k", state))[0] == ("1 · stool bench", "o|k|-1|1")


def test_long_text_fallbacks_are_split_into_messages_under_the_limit() -> None:
    parts = _chunks(["a" * 1000] * 9, 4096)
    assert [len(p) for p in parts] == [4006, 4006, 1000]


# ---- keyboard ---------------------------------------------------------------------------


def _buttons(markup) -> list[tuple[str, str]]:
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


def test_keyboard_offers_similar_filters_and_more() -> None:
    state = QueryState(np.zeros(4, np.float32), labels=("bed", "chair", "sofa"))
    hits = [hit(f"p{i}", categories=(["sofa", "chair"][i % 2],)) for i in range(5)]
    buttons = _buttons(results_keyboard("key", state, hits, 5, NO_FILTER, 5))
    assert buttons[:5] == [(f"Similar to #{n}", f"s|key|-1|{n - 1}") for n in range(6, 11)]
    assert ("Only sofa", "f|key|2|0") in buttons and ("Only chair", "f|key|1|0") in buttons
    assert "Only bed" not in [text for text, _ in buttons]  # no bed on this page
    assert buttons[-1] == ("More ▸", "m|key|-1|10")


def test_drawing_a_keyboard_leaves_the_cached_query_as_it_was() -> None:
    state = QueryState(np.zeros(4, np.float32), labels=("sofa",))
    new_label = [hit("a", categories=("lamp",)), hit("b", categories=("sofa",))]
    buttons = _buttons(results_keyboard("k", state, new_label, 0, NO_FILTER, 5))
    assert state.labels == ("sofa",)  # a category added by a reload gets no button, no number
    assert [t for t, _ in buttons if t.startswith("Only")] == ["Only sofa"]


def test_keyboard_under_a_filter_offers_all_categories_and_no_more_at_the_end() -> None:
    state = QueryState(np.zeros(4, np.float32), labels=("sofa",))
    buttons = _buttons(results_keyboard("k", state, [hit("a"), hit("b")], 0, 0, 5))
    labels = [text for text, _ in buttons]
    assert "Only sofa" not in labels and "All categories" in labels and "More ▸" not in labels
    full = [hit(str(i)) for i in range(5)]
    at_end = _buttons(results_keyboard("k", state, full, MAX_RESULTS - 5, 0, 5))
    assert "More ▸" not in [text for text, _ in at_end]


def test_without_more_drops_only_the_more_button() -> None:
    state = QueryState(np.zeros(4, np.float32), labels=("sofa",))
    markup = results_keyboard("k", state, [hit(str(i)) for i in range(5)], 0, NO_FILTER, 5)
    assert [t for t, _ in _buttons(without_more(markup))] == [
        t for t, _ in _buttons(markup) if t != "More ▸"
    ]


def test_query_state_rejects_unknown_label_numbers() -> None:
    state = QueryState(np.zeros(4, np.float32), labels=("sofa",))
    assert state.label(NO_FILTER) is None and state.label(0) == "sofa"
    with pytest.raises(ValueError):
        state.label(1)


# ---- product photos ---------------------------------------------------------------------


def test_product_photos_are_sent_as_is_converted_or_skipped(tmp_path: Path) -> None:
    jpeg = tmp_path / "a.jpg"
    Image.new("RGB", (20, 10), "red").save(jpeg)
    assert load_photo(jpeg) == jpeg.read_bytes()
    tiff = tmp_path / "b.tiff"
    Image.new("RGB", (3000, 1500), "blue").save(tiff)
    converted = load_photo(tiff)
    assert converted is not None
    with Image.open(io.BytesIO(converted)) as image:
        assert image.format == "JPEG" and max(image.size) == 1280
    broken = tmp_path / "c.png"
    broken.write_bytes(b"not a png")
    assert load_photo(broken) == b"not a png"  # sendable type: Telegram judges it
    broken_tiff = tmp_path / "d.tif"
    broken_tiff.write_bytes(b"nope")
    assert load_photo(broken_tiff) is None
    assert load_photo(tmp_path / "missing.jpg") is None and load_photo(None) is None
    assert PHOTO_LIMIT == 10 * 1024 * 1024


# ---- settings ---------------------------------------------------------------------------


def test_bot_settings_read_ids_and_urls_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNAPFIND_BOT_TOKEN", "123456:" + "A" * 35)
    monkeypatch.setenv("SNAPFIND_ALLOWED_USERS", "1, 2;3")
    monkeypatch.setenv("SNAPFIND_ADMIN_IDS", "9")
    monkeypatch.setenv("SNAPFIND_BOT_API_URL", "http://localhost:8081/bot")
    settings = load_settings(BotSettings)
    assert settings.allowed_users == {1, 2, 3} and settings.admin_ids == {9}
    assert settings.file_url == "http://localhost:8081/file/bot"
    assert "A" * 35 not in repr(settings) and "A" * 35 not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"allowed_users": "1,two"}, "user ids are integers"),
        ({"bot_mode": "webhook"}, "SNAPFIND_WEBHOOK_URL"),
        ({"webhook_secret": "has space"}, "1-256 characters"),
        ({"rate_limit": 0}, "rate_limit (from the command line)"),  # as the caller gave it
    ],
)
def test_bad_bot_settings_are_one_line(
    fields: dict, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(BotSettings, **fields)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert "has space" not in str(caught.value)


# ---- log redaction ----------------------------------------------------------------------


def test_secrets_are_masked_in_messages_arguments_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "424242:unit-test-secret_value_xxxxxxxxxxxxxxxx"
    redact_in_logs(secret)
    log = logging.getLogger("test.redaction")
    with caplog.at_level(logging.INFO):
        log.info("url http://api/bot%s/getMe", secret)
        log.info(f"inline {secret}")
        try:
            raise RuntimeError(f"boom at /bot{secret}/x")
        except RuntimeError:
            log.exception("failed")
    rendered = caplog.text
    assert secret not in rendered and rendered.count(MASK) == 3


# ---- worker -----------------------------------------------------------------------------


async def test_worker_runs_jobs_off_the_loop_in_order_and_passes_errors() -> None:
    worker = InferenceWorker(max_pending=4)
    worker.start()
    try:
        threads = await asyncio.gather(
            *(worker.run(lambda: threading.get_ident()) for _ in range(3))
        )
        assert len(set(threads)) == 1 and threads[0] != threading.get_ident()
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda: 1 / 0)
        assert await worker.run(sum, [1, 2]) == 3
    finally:
        await asyncio.to_thread(worker.stop)


async def test_worker_refuses_when_its_queue_is_full_and_drains_on_stop() -> None:
    worker = InferenceWorker(max_pending=1)
    worker.start()
    gate, started = threading.Event(), threading.Event()

    def blocking() -> bool:
        started.set()
        return gate.wait(10)

    running = asyncio.ensure_future(worker.run(blocking))
    assert await asyncio.to_thread(started.wait, 5)  # the thread is busy with it
    queued = asyncio.ensure_future(worker.run(lambda: "done"))
    while worker.pending < 1:
        await asyncio.sleep(0.01)
    with pytest.raises(Busy):
        await worker.run(lambda: "refused")
    gate.set()
    stopping = asyncio.ensure_future(asyncio.to_thread(worker.stop))
    assert await running is True and await queued == "done"
    await stopping
    with pytest.raises(RuntimeError):
        await worker.run(lambda: None)


# ---- retry policy -----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own str()
async def test_retry_policy_retries_passing_failures_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    policy = RetryingRequests(attempts=3, backoff=0.5, max_wait=30)

    def failing(*errors: Exception):
        queue = list(errors)

        async def call() -> bool:
            if queue:
                raise queue.pop(0)
            return True

        return call

    assert await policy.process_request(
        failing(RetryAfter(timedelta(seconds=2)), TimedOut()), (), {}, "sendMessage", {}, None
    )
    assert sleeps == [2.0, 1.0]
    with pytest.raises(BadRequest):
        await policy.process_request(failing(BadRequest("no")), (), {}, "sendMessage", {}, None)
    with pytest.raises(NetworkError):
        await policy.process_request(
            failing(*[NetworkError("x")] * 3), (), {}, "sendMessage", {}, None
        )
    with pytest.raises(RetryAfter):  # longer than we are willing to wait
        await policy.process_request(
            failing(RetryAfter(timedelta(seconds=60))), (), {}, "sendMessage", {}, None
        )


# ---- stats ------------------------------------------------------------------------------


def test_stats_percentiles_and_stage_means() -> None:
    stats = Stats(window=3)
    assert stats.latency(50) is None
    for seconds in (1.0, 2.0, 3.0, 4.0):
        stats.record_query(seconds, {"extract": seconds / 2}, cached=seconds > 3)
    assert stats.queries == 4 and stats.cache_hits == 1
    assert stats.latency(50) == 3.0  # the window keeps the last three
    assert stats.stage_means() == {"extract": 1.5}
