"""Answer each update once: Telegram re-delivers a webhook update that timed out, perhaps to
another replica. Runs before every other handler (group -2, ahead of the access gate)."""

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.resources import resources

log = logging.getLogger(__name__)

GROUP = -2


async def drop_repeated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop an update whose id this bot (any replica sharing its state) has seen already."""
    res = resources(context)
    if await res.state.first_delivery(update.update_id):
        return
    log.info("update %s delivered again: already answered, dropped", update.update_id)
    res.stats.record_refusal("repeated update")
    raise ApplicationHandlerStop
