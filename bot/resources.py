"""Everything the handlers share, built once at start and kept in `bot_data` (PTB's habit)."""

from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from bot.decoding import Decoder
from bot.reload import IndexReloader
from bot.shared_state import SharedState
from bot.stats import Stats
from bot.worker import InferenceWorker
from retrieval.query_api import Retrieval

KEY = "snapfind"


@dataclass
class BotResources:
    """The query API and the bot's own bounded state, plus the access lists."""

    service: Retrieval
    worker: InferenceWorker
    decoder: Decoder
    state: SharedState  # query cache, rate limits, updates seen, presses being answered
    reloader: IndexReloader
    page_size: int = 5
    objects: bool = False  # look for each piece of furniture in a photo (SNAPFIND_OBJECTS)
    allowed_users: frozenset[int] = frozenset()  # empty: everyone
    admin_ids: frozenset[int] = frozenset()
    stats: Stats = field(default_factory=Stats)

    def allows(self, user_id: int) -> bool:
        return not self.allowed_users or user_id in self.allowed_users or user_id in self.admin_ids

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids


def resources(context: ContextTypes.DEFAULT_TYPE) -> BotResources:
    """The shared resources of the running application."""
    return context.application.bot_data[KEY]
