"""Defect sweep of the model runtime (2026-12-05): an export copied to another input size, a
weights file of another network, and exports killed mid-way or run two at once."""

import errno
import fcntl
import json
import logging
import os
import shutil
import threading
import warnings
from pathlib import Path

import pytest

import retrieval.runtime_export as runtime_export
from retrieval.efficientnet_lite import LITE_WEIGHTS
from retrieval.errors import ConfigError, RuntimeModelError
from retrieval.extractor import Extractor
from retrieval.runtime_extractor import load_runtime_extractor
from retrieval.runtime_file import RECORD, expected_fingerprint, find_runtime, runtime_home
from retrieval.settings import Settings
from tests import test_runtime, test_runtime_onnx

exported = test_runtime.exported  # the tiny backbone (64 px) exported as LiteRT (a fixture)
exported_onnx = test_runtime_onnx.exported_onnx  # and as ONNX


def _settings(runtime_dir: Path, input_size: int) -> Settings:
    return Settings(
        _env_file=None,
        backbone="efficientnetb0",
        weights="none",
        input_size=input_size,
        runtime_dir=runtime_dir,
    )


@pytest.mark.parametrize("fixture", ["exported", "exported_onnx"])
def test_an_export_copied_under_another_input_size_is_refused_in_one_line(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The folder copied under the 96 px key, its runtime.json edited to say 96 px: the hashes
    match, and LiteRT raised a traceback at the first photo (ONNX Runtime: at the first
    batch)."""
    exported_dir: Path = request.getfixturevalue(fixture)
    runtime_dir = tmp_path / "runtime"
    source = runtime_home(exported_dir, expected_fingerprint("efficientnetb0", "none", 64))
    target = runtime_home(runtime_dir, expected_fingerprint("efficientnetb0", "none", 96))
    shutil.copytree(source, target)
    raw = json.loads((target / RECORD).read_text())
    raw["fingerprint"]["input_size"] = 96
    (target / RECORD).write_text(json.dumps(raw))
    assert find_runtime(runtime_dir, expected_fingerprint("efficientnetb0", "none", 96))

    with pytest.raises(RuntimeModelError) as caught:
        load_runtime_extractor(_settings(runtime_dir, 96))
    message = str(caught.value)
    assert "\n" not in message
    assert "takes 64 px images" in message and "say 96 px" in message
    assert "snapfind export --force" in message
    assert load_runtime_extractor(_settings(exported_dir, 64)) is not None  # the original serves


def test_a_weights_file_of_another_network_is_one_line_without_warnings() -> None:
    """Lite2's packaged weights given to Lite0: Keras's message was ~200 lines of tensor values
    and layer names, after 77 warnings, one per layer."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError) as caught:
            Extractor("efficientnet-lite0", str(LITE_WEIGHTS["efficientnet-lite2"]))
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert "could not load weights" in message and "efficientnet-lite0" in message
    assert [str(warning.message) for warning in seen] == []


class _Seen(logging.Handler):
    """Sets `event` when a record containing `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_an_export_waits_for_another_then_clears_what_a_killed_one_left(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """A SIGKILLed export left its staging folder (as large as the model) at every attempt,
    and two exports wrote into one folder at once. Another export is stood for by a lock on
    the folder; the leftover is a killed export's staging folder."""
    runtime_dir = tmp_path / "runtime"
    leftover = runtime_dir / ".export-killed"
    leftover.mkdir(parents=True)
    (leftover / "model.tflite").write_bytes(b"half a model")
    waiting = _Seen("another export is writing")
    logger = logging.getLogger("retrieval.runtime_export")
    logger.addHandler(waiting)
    results: list[object] = []
    folder = os.open(runtime_dir, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # another export is running
        worker = threading.Thread(
            target=lambda: results.append(
                runtime_export.export_runtime(tiny_extractor, runtime_dir, "litert")
            )
        )
        worker.start()
        assert waiting.event.wait(timeout=120), "the export did not wait for the other one"
        assert sorted(p.name for p in runtime_dir.iterdir()) == [leftover.name]  # untouched
    finally:
        os.close(folder)  # the other export ends
        logger.removeHandler(waiting)
    worker.join(timeout=600)
    assert not worker.is_alive() and len(results) == 1
    home = runtime_home(runtime_dir, tiny_extractor.fingerprint)
    assert sorted(p.name for p in runtime_dir.iterdir()) == [home.name]  # the leftover is gone
    assert find_runtime(runtime_dir, tiny_extractor.fingerprint) is not None


def test_where_folders_cannot_be_locked_the_export_goes_on_and_removes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network mounts refuse `flock`: exporting there works as before the lock, and no
    staging folder is removed, since it may be a live export's."""

    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(runtime_export.fcntl, "flock", refuse)
    staging = tmp_path / ".export-live"
    staging.mkdir()
    with runtime_export._exclusive(tmp_path):
        assert staging.is_dir()
    assert staging.is_dir()
