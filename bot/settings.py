"""The bot's settings: the core's `Settings` plus Telegram, access, limits and webhook fields.

Every value comes from `SNAPFIND_*` variables or `.env`; lists of user ids are written
`1,2,3`. Secrets are `SecretStr`, so printing the settings never shows them, and a validation
message never repeats a secret's value.
"""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from retrieval.settings import Settings

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILES = "https://api.telegram.org/file/bot"
TOKEN_FORM = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")  # BotFather's `<bot id>:<secret>`
SECRET_FORM = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as secret_token

UserIds = Annotated[frozenset[int], NoDecode]


class BotSettings(Settings):
    """Settings of `snapfind bot`; built once in the command and passed down."""

    bot_token: SecretStr | None = Field(None, description="The token @BotFather gave the bot.")
    bot_api_url: str = Field(
        TELEGRAM_API, description="Bot API base URL (a self-hosted Bot API server, or tests)."
    )
    bot_file_url: str | None = Field(
        None, description="Bot API file URL; default: derived from bot_api_url."
    )
    allowed_users: UserIds = Field(
        frozenset(), description="User ids allowed to use the bot, `1,2,3`; empty: everyone."
    )
    admin_ids: UserIds = Field(
        frozenset(), description="User ids allowed /stats and /reload (always allowed in)."
    )
    rate_limit: int = Field(20, ge=1, description="Searches a user may make per rate window.")
    rate_window: float = Field(60.0, gt=0, description="Rate-limit window in seconds.")
    queue_size: int = Field(
        32, ge=1, le=1024, description="Searches waiting for the model before users get 'busy'."
    )
    decode_slots: int = Field(
        2, ge=1, le=64, description="Photos decoded at once, beside the inference thread."
    )
    max_concurrent_updates: int = Field(
        64, ge=1, le=1024, description="Updates handled at once (downloads run concurrently)."
    )
    objects: bool = Field(
        True,
        description="Box each piece of furniture in a room photo and let the shopper pick one "
        "(a room photo then costs about 3x a search; a product photo costs the same).",
    )
    cache_size: int = Field(1000, ge=1, description="Query vectors kept for buttons and repeats.")
    cache_ttl: float = Field(3600.0, gt=0, description="Seconds a query's buttons keep working.")
    bot_mode: Literal["polling", "webhook"] = Field("polling", description="How updates arrive.")
    poll_timeout: int = Field(30, ge=0, le=50, description="getUpdates long-poll seconds.")
    request_timeout: float = Field(15.0, gt=0, description="Read timeout of Bot API calls (s).")
    webhook_url: str | None = Field(None, description="Public HTTPS URL Telegram posts to.")
    webhook_listen: str = Field("127.0.0.1", description="Address the webhook server binds.")
    webhook_port: int = Field(8443, ge=1, le=65535, description="Port the webhook server binds.")
    webhook_secret: SecretStr | None = Field(
        None, description="Secret Telegram sends with every update; if unset, from the token."
    )
    watch_interval: float = Field(
        10.0, ge=0, description="Seconds between checks for a new index release; 0 = off."
    )
    heartbeat_file: Path | None = Field(
        None, description="File the serving bot touches after each health probe (HEALTHCHECK)."
    )
    heartbeat_interval: float = Field(
        30.0, gt=0, description="Seconds between the bot's health probes."
    )
    redis_url: SecretStr | None = Field(
        None,
        description="redis://host:6379/0 shared by replicas (query state, rate limits, "
        "updates seen, the poller lock); unset: this process's memory.",
    )

    @field_validator("bot_token")
    @classmethod
    def _token_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TOKEN_FORM.match(value.get_secret_value().strip()):
            raise ValueError(
                "does not look like a bot token (<digits>:<30+ characters>); "
                "copy it again from @BotFather"
            )
        return None if value is None else SecretStr(value.get_secret_value().strip())

    @field_validator("heartbeat_file")
    @classmethod
    def _heartbeat_is_a_file(cls, value: Path | None) -> Path | None:
        """The bot replaces this file at every beat: a folder there can never be one, and its
        own age would read as a heartbeat."""
        if value is not None and value.is_dir():
            raise ValueError(f"{value} is a folder: name a file in it, e.g. {value}/heartbeat")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not SECRET_FORM.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z a-z 0-9 _ -")
        return value

    @field_validator("allowed_users", "admin_ids", mode="before")
    @classmethod
    def _user_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            if not all(re.fullmatch(r"-?\d+", p) for p in parts):
                raise ValueError("user ids are integers separated by commas, e.g. 1234,5678")
            return frozenset(int(p) for p in parts)
        return value

    @model_validator(mode="after")
    def _webhook_complete(self) -> "BotSettings":
        if self.bot_mode == "webhook" and not (self.webhook_url or "").startswith(
            ("https://", "http://")
        ):
            raise ValueError(
                "webhook mode needs SNAPFIND_WEBHOOK_URL, the public https:// URL of this bot"
            )
        return self

    @property
    def file_url(self) -> str:
        """The file download base: set, or Telegram's layout (`.../bot` → `.../file/bot`)."""
        if self.bot_file_url:
            return self.bot_file_url
        if self.bot_api_url.endswith("/bot"):
            return self.bot_api_url.removesuffix("/bot") + "/file/bot"
        return TELEGRAM_FILES
