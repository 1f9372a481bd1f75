"""One conversation per update: a photo becomes results, a button press becomes more results.

`Conversation` holds what every step of one reply needs (the bot, the shared resources, the
chat and the user), so the steps take only what differs between them. Retrieval always runs
on the inference worker (never on the event loop); a photo is downloaded and embedded once,
then its vector lives in the query cache for buttons and for the same photo sent again.

A room photo with several pieces of furniture is answered with the photo, each piece boxed and
numbered with a button, and at once the album of the first; the cached query holds every
object's vector, so a tap on another number needs no download and no forward pass.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from telegram import (
    Bot,
    Document,
    File,
    InlineKeyboardMarkup,
    Message,
    PhotoSize,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, TelegramError, TimedOut
from telegram.ext import ContextTypes

from bot.buttons import (
    MAX_RESULTS,
    NO_FILTER,
    Action,
    PhotoObject,
    Press,
    QueryState,
    object_key,
    objects_keyboard,
    photo_key,
    product_key,
    results_keyboard,
    without_more,
)
from bot.captions import NO_MATCH, objects_caption, results_header, shown
from bot.chat_action import showing
from bot.errors import FileTooBig, QueryExpired, RateLimited
from bot.replies import quoting, send_results
from bot.resources import BotResources, resources
from bot.retry import retried
from retrieval.annotate import annotated_jpeg
from retrieval.query_api import Retrieval
from retrieval.results import FoundObject, Hit, Page, QueryResult

GETFILE_LIMIT = 20 * 1024 * 1024  # the largest file Telegram lets a bot download
DOWNLOAD_DEADLINE = 60.0  # seconds one try at a file's bytes may take (20 MB at 350 KB/s)


@dataclass(frozen=True)
class Upload:
    """A photo or an image file, as Telegram describes it."""

    file_id: str
    unique_id: str
    size: int | None

    @classmethod
    def of(cls, attachment: PhotoSize | Document) -> "Upload":
        return cls(attachment.file_id, attachment.file_unique_id, attachment.file_size)


@dataclass(frozen=True)
class Album:
    """One page of results to send, and the cached query its buttons lead on from."""

    key: str
    state: QueryState
    hits: list[Hit]
    offset: int = 0
    category: int = NO_FILTER
    intro: str = ""


@dataclass(frozen=True)
class Conversation:
    """The reply to one update: who asked, where, and the bot's shared resources."""

    bot: Bot
    res: BotResources
    chat_id: int
    user_id: int
    quote: ReplyParameters | None = None  # the photo of an album this answers (`quoting`)

    @classmethod
    def of(cls, update: Update, context: ContextTypes.DEFAULT_TYPE) -> "Conversation":
        return cls(
            context.bot,
            resources(context),
            update.effective_chat.id,
            update.effective_user.id,
            quoting(update.message),
        )

    async def answer_photo(self, upload: Upload) -> None:
        """Download, search and answer one photo (or image file) with an album and buttons."""
        res = self.res
        started = time.perf_counter()
        if upload.size is not None and upload.size > GETFILE_LIMIT:
            raise FileTooBig(f"file of {upload.size} bytes")
        await self.check_rate()
        key = photo_key(upload.unique_id)
        stages: dict[str, float] = {}
        async with showing(self.bot, self.chat_id):
            state = await res.state.get_query(key)
            cached, no_match, picture, first = state is not None, False, None, None
            hits: list[Hit] = []  # the whole photo's first page (a room's objects have their own)
            if state is None:
                mark = time.perf_counter()
                data = await download(self.bot, upload.file_id)
                stages["download"] = time.perf_counter() - mark
                mark = time.perf_counter()
                image = await res.decoder.run(res.service.decode, data)
                stages["decode"] = time.perf_counter() - mark
                mark = time.perf_counter()
                result, objects = await self._search(image, data)
                worked = sum(result.timings.values())
                stages["queue"] = max(0.0, time.perf_counter() - mark - worked)
                stages.update(result.timings)
                found = tuple(PhotoObject(o.label, o.result.vector, o.kind) for o in objects)
                state = await self._remember(key, result, objects=found)
                hits, no_match = result.hits, result.no_match
                if objects:
                    boxes = [(o.box, shown(o.label)) for o in objects]
                    picture = await asyncio.to_thread(annotated_jpeg, image, boxes)
                    first = objects[0].result.hits  # ranked by the finder, against this photo
            else:
                state = state.shown_to(self.user_id)
                await res.state.put_query(key, state)
                if not state.objects:
                    search, page = res.service.search_vector, Page(res.page_size)
                    hits = await res.worker.run(search, state.vector, page)
            mark = time.perf_counter()
            if state.objects:
                await self.show_objects(key, state, picture, first)
            else:
                await self.show(Album(key, state, hits, intro=NO_MATCH if no_match else ""))
            stages["send"] = time.perf_counter() - mark
        res.stats.record_query(time.perf_counter() - started, stages, cached=cached)

    async def answer_press(self, press: Press, message: Message | None) -> None:
        """More / filter / similar: a new page from the cached vector, never re-extracting."""
        res = self.res
        state = await res.state.get_query(press.key)
        if state is None or self.user_id not in state.owners:  # a forged press: another's query
            raise QueryExpired(f"query {press.key} not in cache or not user {self.user_id}'s")
        if press.number >= MAX_RESULTS:
            raise QueryExpired(
                f"button number {press.number} past the {MAX_RESULTS}-result cap",
                f"That's as far as results go ({MAX_RESULTS}). Send another photo to search again.",
            )
        try:
            category = state.label(press.category)
        except ValueError:
            raise QueryExpired(f"query {press.key} has no label {press.category}") from None
        if press.action is Action.OBJECT and press.number > len(state.objects):
            raise QueryExpired(f"query {press.key} has no object {press.number}")
        await self.check_rate()
        res.stats.button_presses += 1
        async with showing(self.bot, self.chat_id):
            if press.action is Action.OBJECT:
                await self.show_object(press.key, state, press.number)
                return
            if press.action is Action.SIMILAR:
                found = await res.worker.run(
                    _similar, res.service, state, press.number, category, res.page_size
                )
                if found is None:
                    raise QueryExpired(f"result #{press.number + 1} of {press.key} is gone")
                source, result = found
                key = product_key(source.product.id)
                shown = await res.state.get_query(key)  # the same product's neighbours, shown
                owners = shown.owners if shown else frozenset()  # to others too
                fresh = await self._remember(key, result, (source.product.id,), owners)
                title = source.product.title or source.product.id
                intro = f"Similar to #{press.number + 1} ({title[:100]}). "
                await self.show(Album(key, fresh, result.hits, intro=intro))
                return
            offset = press.number if press.action is Action.MORE else 0
            size = min(res.page_size, MAX_RESULTS - offset)
            page = Page(size, category, offset, state.exclude)
            hits = await res.worker.run(_page_search(res.service, state), state.vector, page)
            if press.action is Action.MORE and message is not None:
                await _drop_more_button(message)
            await self.show(Album(press.key, state, hits, offset, press.category))

    async def show(self, album: Album) -> None:
        """Send one page of results with the buttons that lead on from it."""
        state, offset = album.state, album.offset
        header = album.intro + results_header(offset, len(album.hits), state.label(album.category))
        markup = results_keyboard(
            album.key, state, album.hits, offset, album.category, self.res.page_size
        )
        await send_results(self.bot, self.chat_id, album.hits, offset, header, markup, self.quote)

    async def show_objects(
        self, key: str, state: QueryState, picture: bytes | None, first: list[Hit] | None
    ) -> None:
        """The photo with its objects boxed, one button each, then the first object's album.

        `picture` and `first` are None for the same photo sent again: the buttons come as text
        then, and the first album from the object's cached vector.
        """
        text = objects_caption([found.label for found in state.objects])
        markup = objects_keyboard(key, state)
        if picture is None:
            await self.bot.send_message(
                self.chat_id, text, reply_markup=markup, reply_parameters=self.quote
            )
        else:
            await self.bot.send_photo(
                self.chat_id,
                picture,
                caption=text,
                reply_markup=markup,
                filename="objects.jpg",
                reply_parameters=self.quote,
            )
        await self.show_object(key, state, 1, first)

    async def show_object(
        self, key: str, state: QueryState, number: int, hits: list[Hit] | None = None
    ) -> None:
        """The album of object `number` of the photo cached as `key` (0: the whole photo);
        each object's album is a query of its own, for its buttons.

        `hits`: the finder's first page, ranked against the whole photo (which sinks products
        that look like the room rather than the object); without them, as for a tap later, the
        page comes from the object's cached vector alone, and so do its "More" pages.
        """
        res = self.res
        page_key, page_state, intro = key, state, "Whole photo: "
        if number:
            found = state.objects[number - 1]
            page_key = object_key(key, number)
            page_state = QueryState(
                found.vector, state.labels, owners=state.owners, of_object=True, kind=found.kind
            )
            await res.state.put_query(page_key, page_state)
            intro = f"{number} · {shown(found.label)}: "
        if hits is None:
            search = _page_search(res.service, page_state)
            hits = await res.worker.run(search, page_state.vector, Page(res.page_size))
        await self.show(Album(page_key, page_state, hits, intro=intro))

    async def check_rate(self) -> None:
        """Count one search for this user; raises `RateLimited` when over the limit."""
        wait = await self.res.state.acquire(self.user_id)
        if wait > 0:
            raise RateLimited(wait)

    async def _search(
        self, image: np.ndarray, data: bytes
    ) -> tuple[QueryResult, list[FoundObject]]:
        """The photo's own result (its timings: every stage's) and its objects, if there
        are enough to choose from (none when the bot does not look for objects); `data`: the
        bytes `image` came from (a room's first object is cut out of them, decoded larger)."""
        res = self.res
        if not res.objects:
            return await res.worker.run(res.service.search_image, image, Page(res.page_size)), []
        found = await res.worker.run(res.service.search_objects, image, res.page_size, data)
        found.whole.timings = found.timings
        return found.whole, found.shown

    async def _remember(
        self,
        key: str,
        result: QueryResult,
        exclude: tuple[str, ...] = (),
        owners: frozenset[int] = frozenset(),
        objects: tuple[PhotoObject, ...] = (),
    ) -> QueryState:
        """Cache a query with the catalog's categories as its filter labels, fixed from now,
        shown to this user (and to `owners`, who were shown the same query before)."""
        labels = self.res.service.describe().categories
        state = QueryState(result.vector, labels, exclude, owners | {self.user_id}, objects)
        await self.res.state.put_query(key, state)
        return state


async def download(bot: Bot, file_id: str) -> bytes:
    """The file's bytes via getFile; Telegram's "file is too big" becomes `FileTooBig`.

    A self-hosted Bot API server hands out files up to 2000 MB, and a photo's message need
    not state its size: the size getFile states is checked before a byte is read. The
    download is retried like every Bot API call (PTB sends it past the retry policy).
    """
    try:
        telegram_file = await bot.get_file(file_id)
    except BadRequest as error:
        if "too big" in str(error).lower():
            raise FileTooBig(str(error)) from None
        raise
    if (telegram_file.file_size or 0) > GETFILE_LIMIT:
        raise FileTooBig(f"getFile says the file has {telegram_file.file_size} bytes")
    data = await retried(bot, partial(_fetch, telegram_file), "file download")
    return bytes(data)


async def _fetch(telegram_file: File) -> bytearray:
    """The file's bytes within `DOWNLOAD_DEADLINE`: the read timeout bounds each read, not a
    transfer that trickles in a byte at a time. Overdue is `TimedOut`: past `PATIENCE` already,
    so the shopper gets the polite reply instead of a reply that never comes."""
    try:
        async with asyncio.timeout(DOWNLOAD_DEADLINE):
            return await telegram_file.download_as_bytearray()
    except TimeoutError:
        raise TimedOut(f"file download took over {DOWNLOAD_DEADLINE:.0f} s") from None


def _similar(
    service: Retrieval, state: QueryState, rank: int, category: str | None, size: int
) -> tuple[Hit, QueryResult] | None:
    """Result `rank` of the query and the products nearest it (runs on the worker)."""
    search = _page_search(service, state)
    ranked = search(state.vector, Page(1, category, rank, state.exclude))
    if not ranked:
        return None
    found = service.similar_to(ranked[0].product.id, size)
    return None if found is None else (ranked[0], found)


def _page_search(service: Retrieval, state: QueryState) -> Callable[[np.ndarray, Page], list[Hit]]:
    """The search a cached query's pages come from: an object's as its first album ranked."""
    if state.of_object:
        return partial(service.search_object_vector, kind=state.kind)
    return service.search_vector


async def _drop_more_button(message: Message) -> None:
    """Cosmetic: the pressed message loses its More button; failures are not worth an error."""
    markup = message.reply_markup
    if not isinstance(markup, InlineKeyboardMarkup):
        return
    with contextlib.suppress(TelegramError):
        await message.edit_reply_markup(without_more(markup))
