"""A runtime exported at another region side is not served with today's boxes and hubness:
the finder says how to mend it, and a plain `snapfind export` (no --force) mends it."""

import json
import shutil
from pathlib import Path

import pytest

from retrieval.errors import RuntimeModelError
from retrieval.extractor import Extractor
from retrieval.feature_map import region_side
from retrieval.regions import region_encoder_for
from retrieval.runtime_file import RECORD, find_runtime, runtime_home
from snapfind.cli import main
from tests import test_runtime
from tests.test_runtime import TINY, runtime_of

exported = test_runtime.exported  # the tiny backbone exported by `snapfind export` (a fixture)


def test_an_export_at_another_region_side_is_refused_then_redone(
    exported: Path, tmp_path: Path, tiny_extractor: Extractor, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "runtime"
    shutil.copytree(exported, copy)
    home = runtime_home(copy, tiny_extractor.fingerprint)
    record = json.loads((home / RECORD).read_text())
    side = region_side(tiny_extractor.input_size)
    assert record["regions"]["side"] == side  # exported today: served as it is
    region_encoder_for(runtime_of(copy, tiny_extractor))
    record["regions"]["side"] = side + 64  # as an export from before the side changed
    (home / RECORD).write_text(json.dumps(record))
    with pytest.raises(RuntimeModelError, match="export again: snapfind export"):
        region_encoder_for(runtime_of(copy, tiny_extractor))
    assert main(["export", "--runtime-dir", str(copy), *TINY]) == 0
    assert " exported " in capsys.readouterr().out
    mended = find_runtime(copy, tiny_extractor.fingerprint)
    assert mended is not None and mended.regions is not None and mended.regions.side == side
