"""ONNX export whose region side is its query side (B7's case): one model gives both passes.

The tiny backbone at 384 px (the region side) stands for EfficientNetB7 at 600: the feature map
is the ONNX model's second output, no `regions.tflite` is written, and a room photo's map comes
from its query forward.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import RuntimeModelError
from retrieval.extractor import Extractor
from retrieval.feature_map import KerasFeatureMap, region_side
from retrieval.onnx_runner import OnnxFeatureMap
from retrieval.regions import region_encoder_for
from retrieval.runtime_export import MIN_PROBE_COSINE
from retrieval.runtime_file import RECORD, REGIONS_FILE, find_runtime, runtime_home
from snapfind.cli import main
from tests.synthetic import compose_room
from tests.test_runtime import runtime_of

SIDE = 384
WIDE = ["--backbone", "efficientnetb0", "--weights", "none", "--input-size", str(SIDE)]


@pytest.fixture(scope="module")
def wide_extractor() -> Extractor:
    from retrieval.tf_runtime import configure_tensorflow

    configure_tensorflow()
    return Extractor("efficientnetb0", "none", SIDE)


@pytest.fixture(scope="module")
def exported_wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny backbone at the region side, exported to ONNX by `snapfind export`."""
    runtime_dir = tmp_path_factory.mktemp("runtime-shared-map")
    assert main(["export", "--format", "onnx", "--runtime-dir", str(runtime_dir), *WIDE]) == 0
    return runtime_dir


class CountingSession:
    """An ONNX Runtime session that counts its forwards."""

    def __init__(self, session: object) -> None:
        self.session, self.forwards = session, 0

    def run(self, *args: object, **kwargs: object) -> list[np.ndarray]:
        self.forwards += 1
        return self.session.run(*args, **kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self.session, name)


def test_the_map_is_the_model_s_second_output(
    exported_wide: Path, wide_extractor: Extractor
) -> None:
    assert region_side(SIDE) == SIDE
    home = runtime_home(exported_wide, wide_extractor.fingerprint)
    assert sorted(p.name for p in home.iterdir()) == ["model.onnx", RECORD]  # no regions.tflite
    record = find_runtime(exported_wide, wide_extractor.fingerprint)
    assert record is not None and record.regions is not None
    assert (record.regions.file, record.regions.side) == ("model.onnx", SIDE)
    assert record.regions.sha256 == record.sha256
    assert record.regions.probe_cosine >= MIN_PROBE_COSINE


def test_shared_map_is_keras_map(exported_wide: Path, wide_extractor: Extractor) -> None:
    runtime = runtime_of(exported_wide, wide_extractor)
    runtime_map = runtime.feature_map()
    assert isinstance(runtime_map, OnnxFeatureMap) and runtime_map.side == SIDE
    image, _ = compose_room(("sofa", "lamp"))
    prepared = wide_extractor.prepare([image])  # the region pass's input is the query's
    expected = KerasFeatureMap(wide_extractor, SIDE)(prepared)
    got = runtime_map(prepared)
    assert got.shape == expected.shape == (SIDE // 32, SIDE // 32, 1280)
    want, have = expected.reshape(-1, 1280), got.reshape(-1, 1280)
    cosines = np.sum(want * have, axis=1) / (
        np.linalg.norm(want, axis=1) * np.linalg.norm(have, axis=1)
    )
    assert cosines.min() >= 0.9999  # every cell


def test_a_room_photo_costs_one_forward(exported_wide: Path, wide_extractor: Extractor) -> None:
    runtime = runtime_of(exported_wide, wide_extractor)
    counter = CountingSession(runtime._runner._session)
    runtime._runner._session = counter
    encoder = region_encoder_for(runtime)
    room, _ = compose_room(("sofa", "lamp", "rug"))
    other, _ = compose_room(("plant", "sofa"))

    vector = runtime.embed_one(room)  # the whole-photo query
    regions = encoder.regions(room)  # then its objects: the same forward's map
    assert counter.forwards == 1
    encoder.regions(other)  # a photo the query did not see: its own forward
    assert counter.forwards == 2

    by_keras = region_encoder_for(wide_extractor).regions(room)  # the reused map is right
    np.testing.assert_array_equal(regions.cells, by_keras.cells)
    assert np.sum(regions.vectors() * by_keras.vectors(), axis=1).min() >= MIN_PROBE_COSINE
    assert float(vector @ wide_extractor.embed_one(room)) >= MIN_PROBE_COSINE


def test_an_export_with_a_separate_map_file_is_redone(
    exported_wide: Path,
    tmp_path: Path,
    wide_extractor: Extractor,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The layout before the map moved into the ONNX model (B7: regions.tflite at 608 px):
    it still verifies, and a plain `snapfind export` (no --force) redoes it."""
    copy = tmp_path / "runtime"
    shutil.copytree(exported_wide, copy)
    home = runtime_home(copy, wide_extractor.fingerprint)
    (home / REGIONS_FILE).write_bytes(b"an older map model")
    record = json.loads((home / RECORD).read_text())
    record["regions"] = {
        "side": SIDE + 32,
        "sha256": hashlib.sha256(b"an older map model").hexdigest(),
        "size_bytes": 18,
        "probe_cosine": 1.0,
    }  # written before the "file" field existed
    (home / RECORD).write_text(json.dumps(record))
    old = find_runtime(copy, wide_extractor.fingerprint)
    assert old is not None and old.regions.file == REGIONS_FILE
    assert main(["export", "--format", "onnx", "--runtime-dir", str(copy), *WIDE]) == 0
    assert " exported → " in capsys.readouterr().out
    mended = find_runtime(copy, wide_extractor.fingerprint)
    assert (mended.regions.file, mended.regions.side) == ("model.onnx", SIDE)
    assert sorted(p.name for p in home.iterdir()) == ["model.onnx", RECORD]


def test_a_record_naming_another_map_file_is_refused(
    exported_wide: Path, tmp_path: Path, wide_extractor: Extractor
) -> None:
    copy = tmp_path / "runtime"
    shutil.copytree(exported_wide, copy)
    home = runtime_home(copy, wide_extractor.fingerprint)
    record = json.loads((home / RECORD).read_text())
    record["regions"]["file"] = "../../elsewhere.onnx"
    (home / RECORD).write_text(json.dumps(record))
    with pytest.raises(RuntimeModelError, match="unknown map file"):
        find_runtime(copy, wide_extractor.fingerprint)
