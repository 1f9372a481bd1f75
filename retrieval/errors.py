"""Typed errors: each carries one readable line, so callers never need a traceback to explain."""


class SnapfindError(Exception):
    """Base of every expected failure; `str(error)` is one line meant for a person."""


class ConfigError(SnapfindError):
    """A setting or argument has a value snapfind cannot use."""


class WeightsUnavailableError(ConfigError):
    """A backbone's pretrained weights could not be downloaded (offline, or the host is down)."""


class ImageError(SnapfindError):
    """Bytes that cannot safely become an RGB image.

    `user_message` is short and friendly, fit to send to a shopper as is.
    """

    def __init__(self, detail: str, user_message: str) -> None:
        super().__init__(detail)
        self.user_message = user_message


class IndexNotFoundError(SnapfindError):
    """No published index where one was expected."""


class IndexDamagedError(SnapfindError):
    """An index file is truncated, corrupt or not what its name says; rebuild the index."""


class IndexMismatchError(SnapfindError):
    """The index was made by another extractor; its vectors would give wrong matches."""


class RuntimeModelError(SnapfindError):
    """An exported runtime model is missing, damaged, or disagrees with the Keras model."""


class StoreError(SnapfindError):
    """The vector store could not be reached, refused a request, or did not answer in time.

    `user_message` is fit to send to a shopper as is (the details are for the log).
    """

    user_message = "The catalog search is unavailable right now. Please try again in a minute."
