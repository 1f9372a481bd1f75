"""One build at a time per index folder: an exclusive `flock` the kernel drops on any exit.

Two builds into one folder would embed every image twice and race to publish; the second
one is refused at once with a clear message. A crash or kill -9 leaves no stale lock, because
the lock dies with the process's open file.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrieval.errors import SnapfindError

LOCK_FILE = ".build.lock"


class BuildLocked(SnapfindError):
    """Another build is writing to the same index folder."""


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's build lock for the duration of the `with` block."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_FILE
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise BuildLocked(
                f"another build (pid {holder}) is writing to {index_dir}; "
                "wait for it to finish, then run this build again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
