"""The conversation's two moves: a photo becomes results, a button press becomes more results.

Retrieval always runs on the inference worker (never on the event loop); a photo is
downloaded and embedded once, then its vector lives in the query cache for buttons and for
the same photo sent again.
"""

import contextlib
import time

import numpy as np
from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError

from bot.callback_data import NO_FILTER, Action, Press, photo_key, product_key
from bot.captions import results_header
from bot.chat_action import showing
from bot.errors import FileTooBig, QueryExpired, RateLimited
from bot.keyboard import MAX_RESULTS, results_keyboard, without_more
from bot.query_state import QueryState
from bot.replies import send_results
from bot.resources import BotResources
from retrieval.index_store import Hit
from retrieval.search import SearchService

GETFILE_LIMIT = 20 * 1024 * 1024  # the largest file Telegram lets a bot download


async def answer_photo(
    bot: Bot,
    res: BotResources,
    chat_id: int,
    user_id: int,
    file_id: str,
    unique_id: str,
    size: int | None,
) -> None:
    """Download, search and answer one photo (or image file) with an album and buttons."""
    started = time.perf_counter()
    if size is not None and size > GETFILE_LIMIT:
        raise FileTooBig(f"file of {size} bytes")
    check_rate(res, user_id)
    key = photo_key(unique_id)
    stages: dict[str, float] = {}
    async with showing(bot, chat_id):
        state = res.cache.get(key)
        cached = state is not None
        if state is None:
            mark = time.perf_counter()
            data = await download(bot, file_id)
            stages["download"] = time.perf_counter() - mark
            mark = time.perf_counter()
            result = await res.worker.run(res.service.search_bytes, data, res.page_size)
            worked = sum(result.timings.values())
            stages["queue"] = max(0.0, time.perf_counter() - mark - worked)
            stages.update(result.timings)
            state = QueryState(result.vector)
            res.cache.put(key, state)
            hits = result.hits
        else:
            hits = await res.worker.run(res.service.search_vector, state.vector, res.page_size)
        state.owners.add(user_id)
        mark = time.perf_counter()
        await show_page(bot, res, chat_id, key, state, hits, 0, NO_FILTER)
        stages["send"] = time.perf_counter() - mark
    res.stats.record_query(time.perf_counter() - started, stages, cached=cached)


async def answer_press(
    bot: Bot, res: BotResources, chat_id: int, user_id: int, press: Press, message: Message | None
) -> None:
    """More / filter / similar: a new page from the cached vector, never re-extracting."""
    state = res.cache.get(press.key)
    if state is None or user_id not in state.owners:  # a forged press names another's query
        raise QueryExpired(f"query {press.key} not in cache or not user {user_id}'s")
    if press.number >= MAX_RESULTS:
        raise QueryExpired(
            f"button number {press.number} past the {MAX_RESULTS}-result cap",
            f"That's as far as results go ({MAX_RESULTS}). Send another photo to search again.",
        )
    try:
        category = state.label(press.category)
    except ValueError:
        raise QueryExpired(f"query {press.key} has no label {press.category}") from None
    check_rate(res, user_id)
    res.stats.button_presses += 1
    async with showing(bot, chat_id):
        if press.action is Action.SIMILAR:
            found = await res.worker.run(
                _similar, res.service, state, press.number, category, res.page_size
            )
            if found is None:
                raise QueryExpired(f"result #{press.number + 1} of {press.key} is gone")
            source, vector, hits = found
            key = product_key(source.product.id)
            shown = res.cache.get(key)  # the same product's neighbours, shown to others too
            owners = {user_id} | (shown.owners if shown else set())
            fresh = QueryState(vector, exclude=(source.product.id,), owners=owners)
            res.cache.put(key, fresh)
            title = source.product.title or source.product.id
            intro = f"Similar to #{press.number + 1} ({title[:100]}). "
            await show_page(bot, res, chat_id, key, fresh, hits, 0, NO_FILTER, intro)
            return
        offset = press.number if press.action is Action.MORE else 0
        size = min(res.page_size, MAX_RESULTS - offset)
        hits = await res.worker.run(
            _page, res.service, state.vector, offset, size, category, state.exclude
        )
        if press.action is Action.MORE and message is not None:
            await _drop_more_button(message)
        await show_page(bot, res, chat_id, press.key, state, hits, offset, press.category)


async def show_page(
    bot: Bot,
    res: BotResources,
    chat_id: int,
    key: str,
    state: QueryState,
    hits: list[Hit],
    offset: int,
    category: int,
    intro: str = "",
) -> None:
    """Send one page of results with the buttons that lead on from it."""
    header = intro + results_header(offset, len(hits), state.label(category))
    markup = results_keyboard(key, state, hits, offset, category, res.page_size)
    await send_results(bot, chat_id, hits, offset, header, markup)


def check_rate(res: BotResources, user_id: int) -> None:
    """Count one search for `user_id`; raises `RateLimited` when over the limit."""
    wait = res.limiter.acquire(user_id)
    if wait > 0:
        raise RateLimited(wait)


async def download(bot: Bot, file_id: str) -> bytes:
    """The file's bytes via getFile; Telegram's "file is too big" becomes `FileTooBig`."""
    try:
        telegram_file = await bot.get_file(file_id)
    except BadRequest as error:
        if "too big" in str(error).lower():
            raise FileTooBig(str(error)) from None
        raise
    return bytes(await telegram_file.download_as_bytearray())


def _page(
    service: SearchService,
    vector: np.ndarray,
    offset: int,
    size: int,
    category: str | None,
    exclude: tuple[str, ...],
) -> list[Hit]:
    """Results `offset .. offset + size` (runs on the worker)."""
    return service.search_vector(vector, offset + size, category, exclude)[offset:]


def _similar(
    service: SearchService, state: QueryState, rank: int, category: str | None, size: int
) -> tuple[Hit, np.ndarray, list[Hit]] | None:
    """Result `rank` of the query, its stored vector, and its neighbours (runs on the worker)."""
    ranked = service.search_vector(state.vector, rank + 1, category, state.exclude)
    if len(ranked) <= rank:
        return None
    source = ranked[rank]
    vector = service.index.vector_of(source.product.id)
    return source, vector, service.search_vector(vector, size, None, (source.product.id,))


async def _drop_more_button(message: Message) -> None:
    """Cosmetic: the pressed message loses its More button; failures are not worth an error."""
    markup = message.reply_markup
    if not isinstance(markup, InlineKeyboardMarkup):
        return
    with contextlib.suppress(TelegramError):
        await message.edit_reply_markup(without_more(markup))
