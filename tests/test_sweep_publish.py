"""Publishing into an index folder an operator has touched by hand: a stray staging folder, a
`current` that is a folder, foreign entries under `releases/`, a release holding a subfolder."""

from pathlib import Path

import pytest

from index.publish import KEEP_RELEASES, RELEASES, publish, staging_dir
from retrieval.errors import SnapfindError
from retrieval.index_store import CURRENT
from snapfind import cli
from tests.synthetic import tiny_build_command


def published(index_dir: Path, content: str) -> Path:
    staging = staging_dir(index_dir)
    (staging / "manifest.json").write_text(content)
    return publish(index_dir, staging)


def test_a_staging_folder_not_named_by_a_build_is_left_alone(tmp_path: Path) -> None:
    releases = tmp_path / RELEASES
    (releases / ".staging-old").mkdir(parents=True)  # made by hand: no pid, not ours
    (releases / ".staging-12ab").write_text("a file")
    staging = staging_dir(tmp_path)
    assert staging.is_dir()
    assert (releases / ".staging-old").is_dir() and (releases / ".staging-12ab").is_file()


def test_a_current_folder_is_refused_before_a_release_is_written(tmp_path: Path) -> None:
    current = tmp_path / CURRENT  # an index copied with `cp -r`, which follows the link
    current.mkdir()
    (current / "manifest.json").write_text("{}")
    with pytest.raises(SnapfindError, match=r"current is a folder.*move it out"):
        staging_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CURRENT]
    assert (current / "manifest.json").read_text() == "{}"


def test_a_build_over_a_current_folder_is_one_line_and_leaves_no_release(
    tmp_path: Path, capsys
) -> None:
    argv = tiny_build_command(tmp_path)
    index_dir = tmp_path / "idx"
    (index_dir / CURRENT).mkdir(parents=True)
    (index_dir / CURRENT / "manifest.json").write_text("{}")
    assert cli.main([*argv, "--no-progress"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("snapfind: error: ") and "is a folder" in line
    assert not list(index_dir.glob(f"{RELEASES}/*"))  # no orphan release, no staging
    assert not list(index_dir.glob(f".{CURRENT}-*"))  # no half-made link
    assert (index_dir / CURRENT / "manifest.json").read_text() == "{}"


def test_pruning_keeps_the_newest_releases_and_never_touches_foreign_entries(
    tmp_path: Path,
) -> None:
    releases = tmp_path / RELEASES
    (releases / "2025-before-upgrade").mkdir(parents=True)  # the operator's own copy
    (releases / "2025-before-upgrade" / "manifest.json").write_text("{}")
    (releases / "notes.txt").write_text("operator notes")
    made = [published(tmp_path, str(n)) for n in range(KEEP_RELEASES + 2)]
    assert sorted(p.name for p in releases.iterdir()) == sorted(
        ["2025-before-upgrade", "notes.txt", *(p.name for p in made[-KEEP_RELEASES:])]
    )
    assert (tmp_path / CURRENT).resolve() == made[-1]


def test_a_release_holding_a_subfolder_and_a_link_is_published(tmp_path: Path) -> None:
    staging = staging_dir(tmp_path)
    (staging / "parts").mkdir()
    (staging / "parts" / "a.bin").write_bytes(b"x")
    (staging / "dangling").symlink_to("nowhere")
    release = publish(tmp_path, staging)
    assert (tmp_path / CURRENT / "parts" / "a.bin").read_bytes() == b"x"
    assert (tmp_path / CURRENT).resolve() == release
