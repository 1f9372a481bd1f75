"""PTB handlers: one async function per kind of update, and ONE error handler.

Handlers do not catch errors: expected refusals (`UserFacingError`, the core's `ImageError`)
and surprises alike reach `on_error`, which logs them with context and answers politely.
"""

import logging

from telegram import Message, Update
from telegram.error import TelegramError
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
from bot.resources import resources
from retrieval.errors import ImageError, SnapfindError

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
    """Let only allowed users through; others get one polite refusal."""
    user = update.effective_user
    if user is not None and resources(context).allows(user.id):
        return
    log.info("refused update %s from user %s (not allowed)", update.update_id, user and user.id)
    if update.callback_query is not None:
        await update.callback_query.answer(NOT_ALLOWED, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(NOT_ALLOWED)
    raise ApplicationHandlerStop


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
    """More / Only <category> / All categories / Similar to #n."""
    query = update.callback_query
    if update.effective_chat is None:  # a button of an inline message: no chat to answer in
        await query.answer(INLINE_BUTTON, show_alert=True)
        return
    await query.answer()
    try:
        press = decode(query.data or "")
    except ValueError:
        raise QueryExpired(f"bad callback data {query.data!r}") from None
    message = query.message if isinstance(query.message, Message) else None
    await Conversation.of(update, context).answer_press(press, message)


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats (admins): catalog, backbone, queries served, latency percentiles."""
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
    info = await resources(context).reloader.reload()
    await update.effective_message.reply_text(
        f"Reloaded: {info.products} products from {info.release} (built {info.built_at})."
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
    if isinstance(error, UserFacingError | ImageError):
        res.stats.record_refusal(type(error).__name__)
        log.info("%s refused: %s: %s", where, type(error).__name__, error)
        reply = error.user_message
    else:
        log.error("%s failed", where, exc_info=error)
        admin_detail = isinstance(error, SnapfindError) and user and res.is_admin(user.id)
        reply = f"Failed: {error}" if admin_detail else SORRY
    if chat is None:
        return
    try:
        await context.bot.send_message(chat.id, reply)
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
    app.add_handler(MessageHandler(filters.Document.ALL, other_file))
    app.add_handler(CallbackQueryHandler(button))
    app.add_handler(MessageHandler(filters.ALL, unsupported))
    app.add_error_handler(on_error)


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"
