"""A loopback Telegram Bot API for tests: the real bot talks to it, a test plays the users."""

from .server import TOKEN, BotApiServer, Call

__all__ = ["TOKEN", "BotApiServer", "Call"]
