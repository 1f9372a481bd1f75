"""Path → bytes, bounded: only regular files, never more than the limit, never blocking.

`Path.read_bytes()` on a symlink to /dev/zero reads until memory runs out, and on a FIFO it
waits forever; every image file snapfind opens (query photos, catalog images) comes here.
"""

import os
import stat
from pathlib import Path

from retrieval.errors import ImageError

_NOT_A_FILE = "That is not an image file."
_TOO_LARGE = "That file is too large (over {mb} MB). Please use a smaller photo."


def read_image_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path` (symlinks to one allowed); else `ImageError`.

    O_NONBLOCK makes opening a FIFO return at once; `fstat` on the opened descriptor (not on
    the name, which could be swapped) then refuses anything that is not a regular file. The
    check comes before `fdopen`, which itself raises on a directory, and the descriptor is
    closed on every path, so a folder named `x.jpg` is one clear refusal and no leaked fd.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ImageError(f"cannot open {path}: {reason}", f"Cannot open it: {reason}.") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{path} is not a regular file", _NOT_A_FILE)
        if info.st_size > max_bytes:
            raise _too_large(path, info.st_size, max_bytes)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)  # one byte more tells a file that grew
    except OSError as error:
        raise ImageError(f"cannot read {path}: {error.strerror}", _NOT_A_FILE) from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise _too_large(path, len(data), max_bytes)
    return data


def _too_large(path: Path, size: int, max_bytes: int) -> ImageError:
    return ImageError(
        f"{path} has {size} bytes or more, over the {max_bytes}-byte limit",
        _TOO_LARGE.format(mb=max_bytes // (1024 * 1024)),
    )
