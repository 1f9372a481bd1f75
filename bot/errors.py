"""Failures a shopper should hear about: each carries the one friendly line the bot replies.

Handlers raise these instead of replying themselves, so the single error handler decides
how every failure is answered and logged (the core's `ImageError` has the same
`user_message` attribute and is answered the same way).
"""


class UserFacingError(Exception):
    """An expected refusal; `user_message` is sent to the user as is."""

    user_message = "Sorry, something went wrong. Please try again."

    def __init__(self, detail: str, user_message: str | None = None) -> None:
        super().__init__(detail)
        if user_message is not None:
            self.user_message = user_message


class Busy(UserFacingError):
    """The search queue is full."""

    user_message = "I'm busy with other photos right now. Please try again in a minute."


class RateLimited(UserFacingError):
    """This user searched too often."""

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, round(retry_after))
        super().__init__(
            f"rate limited for {seconds}s",
            f"That's a lot of searches! Please wait {seconds} s and try again.",
        )


class FileTooBig(UserFacingError):
    """Telegram will not hand bots files over 20 MB."""

    user_message = (
        "That file is too big for me to download (Telegram's limit for bots is 20 MB). "
        "Please send it as a photo, or a smaller file."
    )


class QueryExpired(UserFacingError):
    """A button refers to a search no longer in the cache."""

    user_message = "That search has expired. Please send the photo again."
