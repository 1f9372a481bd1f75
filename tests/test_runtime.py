"""Exported runtime model: same vectors as Keras, verified on disk, served without TensorFlow."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import retrieval.runtime_export as runtime_export
from retrieval.errors import RuntimeModelError
from retrieval.extractor import Extractor
from retrieval.runtime_extractor import RuntimeExtractor, open_runner
from retrieval.runtime_file import MODEL_FILES, RECORD, find_runtime, runtime_home
from snapfind.cli import main
from tests.synthetic import TINY_ARGS as TINY
from tests.synthetic import draw_item, write_shapes_catalog

TINY_ENV = {"SNAPFIND_BACKBONE": "efficientnetb0", "SNAPFIND_WEIGHTS": "none"}
TINY_ENV |= {"SNAPFIND_INPUT_SIZE": "64"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runtime dir holding the tiny backbone, exported through `snapfind export`."""
    runtime_dir = tmp_path_factory.mktemp("runtime")
    assert main(["export", "--runtime-dir", str(runtime_dir), *TINY]) == 0
    return runtime_dir


def photos(n: int) -> list[np.ndarray]:
    return [np.asarray(draw_item(("circles", "squares")[i % 2], 7 + i)) for i in range(n)]


def runtime_of(runtime_dir: Path, extractor: Extractor) -> RuntimeExtractor:
    record = find_runtime(runtime_dir, extractor.fingerprint)
    assert record is not None
    home = runtime_home(runtime_dir, extractor.fingerprint)
    return RuntimeExtractor(record, open_runner(record.format, home / record.model_file), home)


def test_runtime_vectors_match_keras(exported: Path, tiny_extractor: Extractor) -> None:
    runtime = runtime_of(exported, tiny_extractor)
    assert runtime.fingerprint == tiny_extractor.fingerprint
    assert (runtime.model_name, runtime.input_size) == (tiny_extractor.model_name, 64)
    images = photos(5)
    expected = tiny_extractor.embed(images)
    for batch_size in (1, 2, 5):  # the interpreter is re-planned when the batch changes
        got = runtime.embed(images, batch_size=batch_size)
        assert got.shape == (5, 1280) and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(got * expected, axis=1)) >= runtime_export.MIN_PROBE_COSINE
    np.testing.assert_allclose(runtime.embed_one(images[0]), got[0], atol=1e-5)


def test_record_names_the_file_by_hash(exported: Path, tiny_extractor: Extractor) -> None:
    home = runtime_home(exported, tiny_extractor.fingerprint)
    record = json.loads((home / RECORD).read_text())
    assert record["format"] == "litert" and record["probe_cosine"] >= 0.99999
    assert record["size_bytes"] == (home / MODEL_FILES["litert"]).stat().st_size
    assert record["fingerprint"]["weights_id"] == "none:seed1234"
    assert sorted(p.name for p in exported.iterdir()) == [home.name]  # no staging left behind


def test_export_is_kept_unless_forced(
    exported: Path, capsys: pytest.CaptureFixture[str], tiny_extractor: Extractor
) -> None:
    record = find_runtime(exported, tiny_extractor.fingerprint)
    assert main(["export", "--runtime-dir", str(exported), *TINY]) == 0
    assert record.exported_at in capsys.readouterr().out  # the verified export was reused


def test_damaged_model_is_refused(
    exported: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    copy = tmp_path / "runtime"
    shutil.copytree(exported, copy)
    model = runtime_home(copy, tiny_extractor.fingerprint) / MODEL_FILES["litert"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(RuntimeModelError, match="does not match its sha256"):
        find_runtime(copy, tiny_extractor.fingerprint)


@pytest.mark.parametrize("model_format", ["litert", "onnx"])
def test_export_that_disagrees_with_keras_is_refused(
    tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch, model_format: str
) -> None:
    """Keras's vectors are permuted for the probe, as a broken converter's would be."""
    keras_forward = tiny_extractor.embed_prepared
    monkeypatch.setattr(tiny_extractor, "embed_prepared", lambda b: keras_forward(b)[::-1])
    with pytest.raises(RuntimeModelError, match="disagrees with Keras"):
        runtime_export.export_runtime(tiny_extractor, tmp_path, model_format)
    assert list(tmp_path.iterdir()) == []  # nothing written, no staging left
    assert find_runtime(tmp_path, tiny_extractor.fingerprint) is None


SERVE_WITHOUT_TENSORFLOW = """
import sys
from snapfind.cli import main
from snapfind.commands.bot import load_or_build, settings_from
from snapfind.cli import parser

code = main(["search", "--json", "-k", "1", sys.argv[1]]) + main(["health"])
service = load_or_build(settings_from(parser().parse_args(["bot"])))
print("extractor", type(service.extractor).__name__)
print("tensorflow imported", "tensorflow" in sys.modules, "keras imported", "keras" in sys.modules)
sys.exit(code)
"""


def serve_in_fresh_process(runtime_dir: Path, tmp_path: Path) -> list[str]:
    """An index built by Keras, served from `runtime_dir` in a fresh process; its output."""
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=2)
    index_dir = tmp_path / "index"
    args = ["--no-progress", "--catalog", str(catalog), "--out", str(index_dir), *TINY]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SNAPFIND_RUNTIME_DIR", str(tmp_path / "none"))  # built by Keras
        assert main(["index", "build", *args]) == 0
    manifest = json.loads((index_dir / "current" / "manifest.json").read_text())
    assert manifest["extra"]["runtime"] == "keras"  # the manifest says what embedded it
    photo = catalog / "shop" / "squares" / "squares-1.jpg"
    env = os.environ | TINY_ENV | {"SNAPFIND_RUNTIME_DIR": str(runtime_dir)}
    env |= {"SNAPFIND_INDEX_DIR": str(index_dir), "SNAPFIND_BOT_TOKEN": "123456:" + "x" * 35}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_TENSORFLOW, str(photo)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    top = json.loads(lines[0])["results"][0]
    assert (
        top["id"] == "shop/squares/squares-1" and top["score"] > 0.9999
    )  # the catalog photo finds itself
    assert lines[1].startswith("healthy: ")
    assert "extractor RuntimeExtractor" in lines
    assert "tensorflow imported False keras imported False" in lines
    return lines


def test_serving_processes_do_not_import_tensorflow(exported: Path, tmp_path: Path) -> None:
    """Same answers from the LiteRT export as from the Keras build, without TensorFlow."""
    serve_in_fresh_process(exported, tmp_path)


def test_without_export_or_tensorflow_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serving-only install (the runtime image) with no matching export: one clear line."""
    import importlib.util

    from retrieval import runtime_extractor
    from retrieval.settings import Settings

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        runtime_extractor.importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "tensorflow" else real_find_spec(name, *rest),
    )
    settings = Settings(backbone="efficientnetb0", weights="none", runtime_dir=tmp_path)
    with pytest.raises(RuntimeModelError, match="TensorFlow is not installed"):
        runtime_extractor.load_runtime_extractor(settings)
