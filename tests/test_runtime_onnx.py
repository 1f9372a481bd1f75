"""The ONNX Runtime format: same vectors as Keras, recorded, served without TensorFlow.

A disagreeing ONNX export is refused in tests/test_runtime.py, beside the LiteRT one.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import retrieval.runtime_export as runtime_export
from retrieval.extractor import Extractor
from retrieval.runtime_file import RECORD, REGIONS_FILE, runtime_home
from snapfind.cli import main
from tests.test_runtime import TINY, photos, runtime_of, serve_in_fresh_process


@pytest.fixture(scope="module")
def exported_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runtime dir holding the tiny backbone as ONNX, exported through `snapfind export`."""
    runtime_dir = tmp_path_factory.mktemp("runtime-onnx")
    assert main(["export", "--format", "onnx", "--runtime-dir", str(runtime_dir), *TINY]) == 0
    return runtime_dir


def test_onnx_vectors_match_keras(exported_onnx: Path, tiny_extractor: Extractor) -> None:
    runtime = runtime_of(exported_onnx, tiny_extractor)
    assert runtime.runtime_id.startswith("onnx:sha256:")
    images = photos(5)
    expected = tiny_extractor.embed(images)
    for batch_size in (1, 2, 5):  # one graph, dynamic batch
        got = runtime.embed(images, batch_size=batch_size)
        assert got.shape == (5, 1280) and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(got * expected, axis=1)) >= runtime_export.MIN_PROBE_COSINE


def test_onnx_record_names_format_file_and_hash(
    exported_onnx: Path, tiny_extractor: Extractor
) -> None:
    home = runtime_home(exported_onnx, tiny_extractor.fingerprint)
    record = json.loads((home / RECORD).read_text())
    assert record["format"] == "onnx" and record["probe_cosine"] >= 0.99999
    assert "tf2onnx" in record["exporter"]
    assert sorted(p.name for p in home.iterdir()) == ["model.onnx", REGIONS_FILE, RECORD]
    assert record["size_bytes"] == (home / "model.onnx").stat().st_size


def test_asking_for_the_other_format_replaces_the_export(
    exported_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    runtime_dir = tmp_path / "runtime"
    shutil.copytree(exported_onnx, runtime_dir)
    assert main(["export", "--format", "onnx", "--runtime-dir", str(runtime_dir), *TINY]) == 0
    assert "already exported" in capsys.readouterr().out
    assert main(["export", "--format", "litert", "--runtime-dir", str(runtime_dir), *TINY]) == 0
    out = capsys.readouterr().out
    assert " exported → " in out and ": litert, " in out
    [home] = runtime_dir.iterdir()
    assert sorted(p.name for p in home.iterdir()) == ["model.tflite", REGIONS_FILE, RECORD]


def test_onnx_serves_without_tensorflow(exported_onnx: Path, tmp_path: Path) -> None:
    serve_in_fresh_process(exported_onnx, tmp_path)
