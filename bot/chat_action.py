"""Keep "sending photo…" showing while a search runs (Telegram clears an action after ~5 s)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

log = logging.getLogger(__name__)

REFRESH = 4.5  # seconds; a little under Telegram's 5 s display time


@contextlib.asynccontextmanager
async def showing(
    bot: Bot, chat_id: int, action: str = ChatAction.UPLOAD_PHOTO
) -> AsyncIterator[None]:
    """Send `action` now and every few seconds until the block ends; never delays the block."""
    task = asyncio.create_task(_repeat(bot, chat_id, action))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _repeat(bot: Bot, chat_id: int, action: str) -> None:
    while True:
        try:
            await bot.send_chat_action(chat_id, action)
        except TelegramError as error:  # cosmetic: a lost action must not fail the search
            log.debug("chat action not sent to %s: %s", chat_id, error)
        await asyncio.sleep(REFRESH)
