"""Results → Telegram messages: one album of product photos, then the buttons message.

Products whose image file is missing or unsendable are listed in a text message instead,
so one bad catalog file never costs the user the whole answer.
"""

import asyncio

from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, Message, ReplyParameters

from bot.captions import caption
from bot.product_photos import load_photo
from retrieval.results import Hit

MESSAGE_LIMIT = 4096  # Telegram's limit on a text message


async def send_results(
    bot: Bot,
    chat_id: int,
    hits: list[Hit],
    offset: int,
    header: str,
    markup: InlineKeyboardMarkup | None,
    quote: ReplyParameters | None = None,
) -> None:
    """Album (or single photo) of `hits` ranked from `offset + 1`, text fallback, buttons;
    each a reply to the message `quote` names, if any."""
    photos = await asyncio.to_thread(lambda: [load_photo(hit.product.image) for hit in hits])
    ranked = list(enumerate(hits, start=offset + 1))
    shown = [(rank, hit, data) for (rank, hit), data in zip(ranked, photos, strict=True) if data]
    missing = [(rank, hit) for (rank, hit), data in zip(ranked, photos, strict=True) if not data]
    if len(shown) >= 2:
        media = [
            InputMediaPhoto(data, caption=caption(rank, hit), filename=f"result{rank}.jpg")
            for rank, hit, data in shown
        ]
        await bot.send_media_group(chat_id, media, reply_parameters=quote)
    elif shown:
        rank, hit, data = shown[0]
        await bot.send_photo(
            chat_id,
            data,
            caption=caption(rank, hit),
            filename=f"result{rank}.jpg",
            reply_parameters=quote,
        )
    for text in _chunks([caption(rank, hit) for rank, hit in missing], MESSAGE_LIMIT):
        await bot.send_message(chat_id, text, reply_parameters=quote)
    await bot.send_message(chat_id, header, reply_markup=markup, reply_parameters=quote)


def quoting(message: Message | None) -> ReplyParameters | None:
    """A reply to `message` if it is one photo of an album: the answers to an album's photos
    arrive interleaved, and only the quote says which photo each one answers."""
    if message is None or message.media_group_id is None:
        return None
    return ReplyParameters(message.message_id, allow_sending_without_reply=True)


def _chunks(entries: list[str], limit: int) -> list[str]:
    """Blank-line-separated entries packed into as few messages of at most `limit` as fit."""
    messages: list[str] = []
    for entry in entries:
        if messages and len(messages[-1]) + 2 + len(entry) <= limit:
            messages[-1] += "\n\n" + entry
        else:
            messages.append(entry[:limit])
    return messages
