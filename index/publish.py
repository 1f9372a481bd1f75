"""Atomic publication of index releases.

A release is written in full under `releases/.staging-*`, renamed to `releases/<timestamp>`,
and only then is `current` swapped to it by renaming a fresh symlink over the old one. Readers
see the old release or the new one, never a half-written one; a crash leaves `current` as it was.
"""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from retrieval.index_store import CURRENT

RELEASES = "releases"
STAGING_PREFIX = ".staging-"
KEEP_RELEASES = 3


def staging_dir(index_dir: Path) -> Path:
    """A fresh private directory to write a release into."""
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


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
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
    """Keep the newest releases; readers that still hold an older one keep their open files."""
    published = sorted(p for p in releases.iterdir() if not p.name.startswith("."))
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
        pid = int(path.name.removeprefix(STAGING_PREFIX).split("-")[0] or 0)
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
