"""Atomic publication of index releases.

A release is written in full under `releases/.staging-*`, renamed to `releases/<timestamp>`,
and only then is `current` swapped to it by renaming a fresh symlink over the old one. Readers
see the old release or the new one, never a half-written one; a crash leaves `current` as it was.
"""

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from retrieval.errors import SnapfindError
from retrieval.index_store import CURRENT

RELEASES = "releases"
STAGING_PREFIX = ".staging-"
KEEP_RELEASES = 3
STAGING_NAME = re.compile(rf"{re.escape(STAGING_PREFIX)}(\d{{1,9}})-")  # what `staging_dir` names
RELEASE_NAME = re.compile(r"\d{8}T\d{12}Z")  # what `publish` names a release: the only ones pruned


def staging_dir(index_dir: Path) -> Path:
    """A fresh private directory to write a release into."""
    _check_current(index_dir)
    releases = index_dir / RELEASES
    releases.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(releases)
    path = releases / f"{STAGING_PREFIX}{os.getpid()}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    path.mkdir()
    return path


def publish(index_dir: Path, staging: Path) -> Path:
    """Make `staging` the current release; returns its final path."""
    releases = index_dir / RELEASES
    final = releases / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    _fsync_tree(staging)
    staging.rename(final)
    link = index_dir / f".{CURRENT}-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(final.relative_to(index_dir))  # relative: the folder may be mounted elsewhere
    link.replace(index_dir / CURRENT)
    _fsync_dir(index_dir)
    _prune(releases, keep=final)
    return final


def _check_current(index_dir: Path) -> None:
    """`current` must be a link (or absent): a link can be swapped atomically, a folder (an index
    copied with `cp -r`, which follows links) cannot, and the swap would fail after the work."""
    current = index_dir / CURRENT
    if current.is_dir() and not current.is_symlink():
        raise SnapfindError(
            f"{current} is a folder, not the link a build swaps to publish: "
            f"move it out of {index_dir}, then build again"
        )


def _fsync_tree(directory: Path) -> None:
    """Files and folders, recursively; a link's own entry is made durable by its folder's."""
    for path in directory.iterdir():
        if path.is_symlink():
            continue
        if path.is_dir():
            _fsync_tree(path)
            continue
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _prune(releases: Path, keep: Path) -> None:
    """Keep the newest releases; readers that still hold an older one keep their open files.
    Only folders named as `publish` names them: anything else there is the operator's."""
    published = sorted(p for p in releases.iterdir() if RELEASE_NAME.fullmatch(p.name))
    for old in published[:-KEEP_RELEASES]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def discard_staging(index_dir: Path) -> None:
    """Remove this process's unpublished staging folders: a build that failed (a full disk,
    Ctrl-C) leaves neither half a release nor the disk space it took."""
    for path in (index_dir / RELEASES).glob(f"{STAGING_PREFIX}{os.getpid()}-*"):
        shutil.rmtree(path, ignore_errors=True)


def _remove_abandoned_staging(releases: Path) -> None:
    """Staging folders of builds that died (their process is gone)."""
    for path in releases.glob(f"{STAGING_PREFIX}*"):
        named = STAGING_NAME.match(path.name)  # a folder named otherwise is not ours to remove
        if named and not _alive(int(named[1])):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
