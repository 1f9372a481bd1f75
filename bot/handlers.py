"""PTB handlers: one async function per kind of update, and ONE error handler.

Handlers do not catch errors: expected refusals (`UserFacingError`, the core's `ImageError`)
and surprises alike reach `on_error`, which logs them with context and answers politely.
"""

import logging

from telegram import CallbackQuery, Message, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.buttons import decode
from bot.conversation import Conversation, Upload
from bot.dedup import GROUP as DEDUP_GROUP
from bot.dedup import drop_repeated
from bot.errors import QueryExpired, UserFacingError
from bot.replies import quoting
from bot.resources import resources
from retrieval.errors import ImageError, SnapfindError, StoreError

log = logging.getLogger(__name__)

HELP = (
    "Hi! Send me a photo of a piece of furniture and I'll find the most similar products "
    "in the catalog.\n\n"
    "• Send a photo, or an image file (JPEG, PNG or WebP).\n"
    "• A photo of a whole room: I number each piece of furniture; tap a number to search it.\n"
    "• Under the results: “More” shows the next ones, “Only …” keeps one category, "
    "“Similar to #n” searches again from that product.\n\n"
    "/help shows this again."
)
NOT_ALLOWED = "Sorry, this bot is private. Ask its owner to add your Telegram user id."
PLEASE_PHOTO = "Send me a photo of furniture and I'll find similar products. /help explains more."
NOT_AN_IMAGE = "I can only search with images. Please send a photo (JPEG, PNG or WebP)."
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
INLINE_BUTTON = "This button only works under results in a chat with me. Send me a photo there."
UNSUPPORTED = {
    "sticker": "Nice sticker! But I need a real photo of furniture to search with.",
    "animation": "I can't search with animations. Please send a still photo.",
    "video": "I can't search with videos. Please send a photo instead.",
    "video_note": "I can't search with video messages. Please send a photo instead.",
    "voice": "I can't listen, sorry. Please send a photo of the furniture.",
    "audio": "I can't search with audio. Please send a photo of the furniture.",
}
IMAGE_FILES = (
    filters.Document.IMAGE
    | filters.Document.FileExtension("jpg")
    | filters.Document.FileExtension("jpeg")
    | filters.Document.FileExtension("png")
    | filters.Document.FileExtension("webp")
)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Let only allowed users through; others get one polite refusal.

    The update is stopped whether or not the refusal is sent: an error raised here would
    reach the error handler, and PTB then goes on to the next group's handlers.
    """
    user = update.effective_user
    if user is not None and resources(context).allows(user.id):
        return
    log.info("refused update %s from user %s (not allowed)", update.update_id, user and user.id)
    try:
        await _refuse(update)
    except TelegramError as error:
        log.warning("update %s: the refusal was not sent: %s", update.update_id, error)
    raise ApplicationHandlerStop


async def _refuse(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(NOT_ALLOWED, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(NOT_ALLOWED)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the bot does and how to use it."""
    await update.effective_message.reply_text(HELP)


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo: search with its largest size."""
    largest = update.effective_message.photo[-1]
    await Conversation.of(update, context).answer_photo(Upload.of(largest))


async def image_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An image sent as a file (uncompressed): search with it as is."""
    document = update.effective_message.document
    await Conversation.of(update, context).answer_photo(Upload.of(document))


async def other_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file that is not an image."""
    await update.effective_message.reply_text(NOT_AN_IMAGE)


async def unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text, stickers, video, voice and anything else that is not an image."""
    message = update.effective_message
    kind = next((k for k in UNSUPPORTED if getattr(message, k, None)), None)
    await message.reply_text(UNSUPPORTED.get(kind or "", PLEASE_PHOTO))


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """More / Only <category> / All categories / Similar to #n / an object of a room.

    A double tap arrives as two presses, perhaps at two replicas: the second, while the first
    is being answered, is dropped (a claim in the shared state), so one tap never sends the
    same album twice.
    """
    query = update.callback_query
    chat = update.effective_chat
    if chat is None:  # a button of an inline message: no chat to answer in
        await query.answer(INLINE_BUTTON, show_alert=True)
        return
    res = resources(context)
    message = query.message.message_id if query.message else 0
    tap = f"{chat.id}:{message}:{query.from_user.id}:{query.data}"  # this button, this user
    if not await res.state.claim_press(tap):
        res.stats.record_refusal("repeated press")
        log.info("update %s: a button pressed again while answered: dropped", update.update_id)
        await _acknowledge(query)
        return
    try:
        await _acknowledge(query)
        await _answer_press(update, context)
    finally:
        await res.state.release_press(tap)


async def _answer_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The page a press asks for; a payload this bot did not make reads as expired."""
    query = update.callback_query
    try:
        press = decode(query.data or "")
    except ValueError:
        raise QueryExpired(f"bad callback data {query.data!r}") from None
    message = query.message if isinstance(query.message, Message) else None
    await Conversation.of(update, context).answer_press(press, message)


async def _acknowledge(query: CallbackQuery) -> None:
    """Stop the button's spinner. Cosmetic: a press Telegram no longer lets us answer (a query
    over its time limit: "query is too old") is still served."""
    try:
        await query.answer()
    except TelegramError as error:
        log.info("callback query %s not answered: %s", query.id, error)


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats (admins): catalog, backbone, queries served, latency percentiles."""
    _no_arguments(context, "stats", "it shows the catalog and the bot's counters")
    res = resources(context)
    info = res.service.describe()
    numbers = res.stats
    p50, p95 = numbers.latency(50), numbers.latency(95)
    stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in numbers.stage_means().items())
    refused = ", ".join(f"{k} {v}" for k, v in sorted(numbers.refused.items())) or "none"
    lines = [
        f"Catalog: {info.products} products, {info.images} images, built {info.built_at}",
        f"Backbone: {info.backbone} ({info.model_name}), "
        f"{info.input_size} px, {info.dim}-d, weights {info.weights_id}",
        f"Queries served: {numbers.queries} ({numbers.cache_hits} from cache), "
        f"button presses: {numbers.button_presses}",
        f"Latency photo→album: p50 {_ms(p50)}, p95 {_ms(p95)}",
        f"Stages (mean): {stages or 'n/a'}",
        f"Refused: {refused}; waiting in queue: {res.worker.pending}",
    ]
    await update.effective_message.reply_text("\n".join(lines))


async def reload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload (admins): swap in the newest published index without a restart."""
    _no_arguments(context, "reload", "it loads the newest published index")
    info = await resources(context).reloader.reload()
    await update.effective_message.reply_text(
        f"Reloaded: {info.products} products from {info.release} (built {info.built_at})."
    )


def _no_arguments(context: ContextTypes.DEFAULT_TYPE, command: str, what: str) -> None:
    """Admin commands take no arguments: given some ("/reload 2026-01-02"), the admin meant
    something the command cannot do, so nothing is done and the reply says how to use it."""
    if context.args:
        raise UserFacingError(
            f"/{command} given arguments {context.args}",
            f"/{command} takes no arguments ({what}). Send just /{command}.",
        )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one error handler: log with context (never the token) and answer politely."""
    error = context.error
    res = resources(context)
    chat = update.effective_chat if isinstance(update, Update) else None
    user = update.effective_user if isinstance(update, Update) else None
    where = (
        f"update {update.update_id} (user {user and user.id}, chat {chat and chat.id})"
        if isinstance(update, Update)
        else "outside an update"
    )
    if isinstance(error, Forbidden):  # the user blocked the bot: no one to answer, no fault
        res.stats.record_refusal(type(error).__name__)
        log.info("%s not answered: %s", where, error)
        return
    if isinstance(error, UserFacingError | ImageError):
        res.stats.record_refusal(type(error).__name__)
        log.info("%s refused: %s: %s", where, type(error).__name__, error)
        reply = error.user_message
    elif isinstance(error, StoreError):  # the operator's Milvus: one line, no traceback
        res.stats.record_refusal("vector store unavailable")
        log.warning("%s failed: %s", where, error)
        reply = error.user_message
    elif _outage(error):  # retried for a while already: no fault of ours, no traceback
        res.stats.record_refusal("Bot API unreachable")
        log.warning("%s failed: the Bot API did not answer (%s)", where, error)
        reply = SORRY
    else:
        log.error("%s failed", where, exc_info=error)
        admin_detail = isinstance(error, SnapfindError) and user and res.is_admin(user.id)
        reply = f"Failed: {error}" if admin_detail else SORRY
    if chat is None:
        return
    quote = quoting(update.message) if isinstance(update, Update) else None
    try:
        await context.bot.send_message(chat.id, reply, reply_parameters=quote)
    except TelegramError as send_error:
        log.warning("%s: could not send the error reply: %s", where, send_error)


def add_handlers(app: Application, admin_ids: frozenset[int]) -> None:
    """Wire every handler; repeats are dropped (group -2), then the gate (group -1) runs."""
    admins = filters.User(user_id=admin_ids)
    app.add_handler(TypeHandler(Update, drop_repeated), group=DEDUP_GROUP)
    app.add_handler(TypeHandler(Update, gate), group=-1)
    app.add_handler(CommandHandler(["start", "help"], start))
    app.add_handler(CommandHandler("stats", stats, filters=admins))
    app.add_handler(CommandHandler("reload", reload, filters=admins))
    app.add_handler(MessageHandler(filters.PHOTO, photo))
    app.add_handler(MessageHandler(IMAGE_FILES, image_file))
    # Telegram sends a GIF as an animation with a document (video/mp4) beside it
    app.add_handler(MessageHandler(filters.ANIMATION, unsupported))
    app.add_handler(MessageHandler(filters.Document.ALL, other_file))
    app.add_handler(CallbackQueryHandler(button))
    app.add_handler(MessageHandler(filters.ALL, unsupported))
    app.add_error_handler(on_error)


def _outage(error: BaseException | None) -> bool:
    """Telegram unreachable, failing (5xx) or flood-limiting us (429) past the retries: no
    fault of ours. A 400 is a NetworkError too, in PTB, but it is our mistake."""
    if isinstance(error, BadRequest):
        return False
    return isinstance(error, NetworkError | RetryAfter)


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"
