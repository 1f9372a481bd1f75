"""The region pass served by LiteRT: the exported feature map is Keras's; no TensorFlow needed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import RuntimeModelError
from retrieval.extractor import Extractor
from retrieval.feature_map import KerasFeatureMap, region_side
from retrieval.regions import region_encoder_for
from retrieval.resize import to_square
from retrieval.runtime_export import MIN_PROBE_COSINE
from retrieval.runtime_file import RECORD, REGIONS_FILE, find_runtime, runtime_home
from snapfind.cli import main
from tests import test_runtime
from tests.synthetic import compose_room
from tests.test_runtime import TINY, runtime_of

exported = test_runtime.exported  # the tiny backbone exported by `snapfind export` (a fixture)


def test_exported_feature_map_is_keras_map(exported: Path, tiny_extractor: Extractor) -> None:
    runtime = runtime_of(exported, tiny_extractor)
    side = region_side(tiny_extractor.input_size)
    assert runtime.record.regions is not None and runtime.record.regions.side == side
    assert runtime.record.regions.probe_cosine >= MIN_PROBE_COSINE
    keras_map, runtime_map = KerasFeatureMap(tiny_extractor, side), runtime.feature_map()
    image, _ = compose_room(("sofa", "lamp"))
    prepared = tiny_extractor.backbone.preprocess(to_square(image, side)[None].astype(np.float32))
    expected, got = keras_map(prepared), runtime_map(prepared)
    assert got.shape == expected.shape == (side // 32, side // 32, 1280)
    want, have = expected.reshape(-1, 1280), got.reshape(-1, 1280)  # (cells, D)
    norms = np.linalg.norm(want, axis=1) * np.linalg.norm(have, axis=1)
    cosines = np.sum(want * have, axis=1) / norms
    assert cosines.min() >= 0.9999  # every cell, not only the map as a whole
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_runtime_and_keras_region_passes_give_the_same_boxes(
    exported: Path, tiny_extractor: Extractor
) -> None:
    image, _ = compose_room(("sofa", "lamp", "rug"))
    by_keras = region_encoder_for(tiny_extractor).regions(image)
    by_runtime = region_encoder_for(runtime_of(exported, tiny_extractor)).regions(image)
    np.testing.assert_array_equal(by_runtime.cells, by_keras.cells)
    cosines = np.sum(by_runtime.vectors() * by_keras.vectors(), axis=1)
    assert cosines.min() >= MIN_PROBE_COSINE
    assert by_runtime.box(0) == by_keras.box(0)


def test_missing_feature_map_is_refused(tmp_path: Path, exported: Path, tiny_extractor) -> None:
    shutil.copytree(exported, tmp_path / "runtime")
    (runtime_home(tmp_path / "runtime", tiny_extractor.fingerprint) / REGIONS_FILE).unlink()
    with pytest.raises(RuntimeModelError, match=f"{REGIONS_FILE} is missing"):
        find_runtime(tmp_path / "runtime", tiny_extractor.fingerprint)


def test_an_export_without_feature_map_is_redone(
    exported: Path,
    tmp_path: Path,
    tiny_extractor: Extractor,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A runtime exported before the region pass: the finder says how to mend it, and a plain
    `snapfind export` (no --force) mends it."""
    copy = tmp_path / "runtime"
    shutil.copytree(exported, copy)
    home = runtime_home(copy, tiny_extractor.fingerprint)
    record = json.loads((home / RECORD).read_text())
    del record["regions"]
    (home / RECORD).write_text(json.dumps(record))
    (home / REGIONS_FILE).unlink()
    with pytest.raises(RuntimeModelError, match="snapfind export"):
        region_encoder_for(runtime_of(copy, tiny_extractor))
    assert main(["export", "--runtime-dir", str(copy), *TINY]) == 0
    assert " exported " in capsys.readouterr().out
    mended = find_runtime(copy, tiny_extractor.fingerprint)
    assert mended is not None and mended.regions is not None


REGIONS_WITHOUT_TENSORFLOW = """
import sys
from pathlib import Path
from retrieval.regions import region_encoder_for
from retrieval.resize import to_square
from retrieval.runtime_extractor import load_runtime_extractor
from retrieval.settings import Settings
from tests.synthetic import compose_room
from tests import test_runtime
from tests.test_runtime import TINY, runtime_of

exported = test_runtime.exported  # the tiny backbone exported by `snapfind export` (a fixture)

settings = Settings(backbone="efficientnetb0", weights="none", input_size=64,
                    runtime_dir=Path(sys.argv[1]))
extractor = load_runtime_extractor(settings)
regions = region_encoder_for(extractor).regions(compose_room(("sofa", "lamp"))[0])
print(len(regions.cells), regions.vectors([0]).shape)
print("tensorflow imported", "tensorflow" in sys.modules, "keras imported", "keras" in sys.modules)
"""


def test_region_pass_runs_without_tensorflow(exported: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", REGIONS_WITHOUT_TENSORFLOW, str(exported)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    count, shape = done.stdout.splitlines()[0].split(" ", 1)
    assert int(count) > 10 and shape == "(1, 1280)"
    assert done.stdout.splitlines()[1] == "tensorflow imported False keras imported False"
