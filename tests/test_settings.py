"""Settings come from SNAPFIND_* variables or .env, and bad values read as one line."""

from pathlib import Path

import pytest

from bot.settings import BotSettings
from retrieval.errors import ConfigError
from retrieval.object_options import DEFAULT_OBJECTS, ObjectOptions
from retrieval.settings import Settings, load_settings


def test_defaults_are_the_studied_model() -> None:
    settings = Settings(_env_file=None)
    assert (settings.backbone, settings.weights, settings.top_k) == (
        "efficientnetb7",
        "imagenet",
        5,
    )
    assert settings.onednn and settings.search_threads == 1  # see benchmarks/README.md


def test_room_photo_switches_become_the_object_options(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).object_options == DEFAULT_OBJECTS  # one source of defaults
    monkeypatch.setenv("SNAPFIND_OBJECT_DETECTOR", "true")
    monkeypatch.setenv("SNAPFIND_OBJECT_CUT_OUT", "false")
    monkeypatch.setenv("SNAPFIND_THREADS", "1")  # the detector runs on the model's threads too
    assert load_settings().object_options == ObjectOptions(detect=True, cut_outs=0, threads=1)


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SNAPFIND_BACKBONE=ResNet50\nSNAPFIND_TOP_K=7\n")
    monkeypatch.setenv("SNAPFIND_WEIGHTS", "NONE")
    settings = load_settings()
    assert (settings.backbone, settings.weights, settings.top_k) == ("resnet50", "none", 7)
    assert load_settings(top_k=3, backbone=None).top_k == 3  # None means "not given"


def test_invalid_values_are_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPFIND_BACKBONE", "alexnet")
    monkeypatch.setenv("SNAPFIND_TOP_K", "0")
    monkeypatch.setenv("SNAPFIND_WEIGHTS", "/no/such/file.h5")
    # a read allocates its bound first: 10^17 bytes was a MemoryError for a 3 KB photo
    monkeypatch.setenv("SNAPFIND_MAX_IMAGE_BYTES", str(10**17))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    for part in (
        "SNAPFIND_BACKBONE: unknown backbone 'alexnet'",
        "SNAPFIND_TOP_K",
        "SNAPFIND_WEIGHTS",
        "SNAPFIND_MAX_IMAGE_BYTES",
    ):
        assert part in message


@pytest.mark.parametrize(
    "name", ["SNAPFIND_CATALOG", "SNAPFIND_INDEX_DIR", "SNAPFIND_HEARTBEAT_FILE"]
)
def test_an_empty_path_in_dotenv_is_refused_not_read_as_the_current_folder(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`SNAPFIND_CATALOG=` was `Path("")`: a build indexed whatever folder it ran in."""
    from bot.settings import BotSettings  # a subclass's path fields are covered too

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"{name}=\n")
    with pytest.raises(ConfigError, match=f"{name}: is empty: give a path"):
        load_settings(BotSettings)


def test_a_dotenv_that_is_not_utf8_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor's Latin-1 `.env` (an accented shop name) was a UnicodeDecodeError traceback."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes("# Café Möbel\nSNAPFIND_TOP_K=3\n".encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"^\.env is not UTF-8 text \(byte \d+\): save it as UTF-8$"
    ):
        load_settings()


def test_a_bad_value_from_the_command_line_is_named_as_given_there() -> None:
    """`search -k 0` named SNAPFIND_TOP_K, a variable the user never set."""
    with pytest.raises(ConfigError) as caught:
        load_settings(top_k=0)
    assert "top_k (from the command line):" in str(caught.value)
    assert "SNAPFIND_TOP_K" not in str(caught.value)


def test_a_heartbeat_file_that_is_a_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot could never replace it, and `health --heartbeat` read the folder's own age as
    a recent beat."""
    monkeypatch.setenv("SNAPFIND_HEARTBEAT_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match=r"SNAPFIND_HEARTBEAT_FILE: .* is a folder: name a file"):
        load_settings(BotSettings)
