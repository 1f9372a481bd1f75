"""Which runtime format a backbone gets, and which backbone an offline first start serves."""

import json
import logging
from pathlib import Path

import pytest

from retrieval import loading
from retrieval.backbones import OFFLINE_BACKBONE, get_backbone
from retrieval.errors import WeightsUnavailableError
from retrieval.extractor import file_sha256
from retrieval.runtime_choice import choose_format
from retrieval.runtime_file import RECORD, RuntimeRecord, expected_fingerprint, runtime_home
from retrieval.settings import Settings


@pytest.mark.parametrize(
    ("backbone", "side", "expected"),
    [
        ("efficientnet-lite0", 224, "litert"),  # measured: LiteRT
        ("efficientnet-lite2", 260, "litert"),
        ("efficientnetb0", 224, "litert"),
        ("efficientnetb3", 300, "litert"),
        ("efficientnetb4", 380, "onnx"),
        ("efficientnetb7", 600, "onnx"),  # measured: ONNX Runtime
        ("efficientnetb7", 128, "litert"),  # the same network on small inputs is cheap
        ("resnet50", 224, "litert"),
    ],
)
def test_format_rule(backbone: str, side: int, expected: str) -> None:
    assert choose_format(get_backbone(backbone), side) == expected


def fake_export(runtime_dir: Path, backbone: str) -> None:
    """A runtime.json for `backbone` whose model file's hash matches (enough for find_runtime)."""
    fingerprint = expected_fingerprint(backbone, "imagenet", None)
    home = runtime_home(runtime_dir, fingerprint)
    home.mkdir(parents=True)
    (home / "model.tflite").write_bytes(b"stand-in")
    record = RuntimeRecord(
        fingerprint=fingerprint,
        model_name=backbone,
        param_count=1,
        format="litert",
        sha256=file_sha256(home / "model.tflite"),
        size_bytes=8,
        probe_cosine=1.0,
        exported_at="2026-12-01T20:00:00+00:00",
        exporter="test",
    )
    (home / RECORD).write_text(record.to_json())
    assert json.loads((home / RECORD).read_text())["format"] == "litert"


def counting_load(attempts: list[str]):
    def load(settings: Settings, *, warmup: bool = False) -> str:
        attempts.append(settings.backbone)
        if settings.backbone == "efficientnetb7":
            raise WeightsUnavailableError("could not download the ImageNet weights of b7")
        return f"extractor {settings.backbone}"

    return load


def test_offline_second_start_serves_the_export_without_a_second_download(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`make run` offline: `snapfind export` fell back to Lite0 and exported it; the bot then
    goes straight to that export, with one line saying why, and never tries B7 again."""
    caplog.set_level(logging.INFO, logger="retrieval.loading")
    fake_export(tmp_path, OFFLINE_BACKBONE)
    attempts: list[str] = []
    settings = Settings(_env_file=None, runtime_dir=tmp_path)
    got = loading.load_extractor_to_build(settings, counting_load(attempts))
    assert got == f"extractor {OFFLINE_BACKBONE}" and attempts == [OFFLINE_BACKBONE]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"using the exported {OFFLINE_BACKBONE}: efficientnetb7 (the default backbone) is not "
        "exported here; set SNAPFIND_BACKBONE to choose"
    ]


def test_offline_first_start_tries_the_download_once_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    attempts: list[str] = []
    settings = Settings(_env_file=None, runtime_dir=tmp_path)  # nothing exported yet
    assert loading.load_extractor_to_build(settings, counting_load(attempts)) == (
        f"extractor {OFFLINE_BACKBONE}"
    )
    assert attempts == ["efficientnetb7", OFFLINE_BACKBONE]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "could not be downloaded" in warnings[0]


def test_a_chosen_backbone_is_never_swapped_for_the_export(tmp_path: Path) -> None:
    fake_export(tmp_path, OFFLINE_BACKBONE)
    attempts: list[str] = []
    chosen = Settings(_env_file=None, runtime_dir=tmp_path, backbone="efficientnetb7")
    with pytest.raises(WeightsUnavailableError):
        loading.load_extractor_to_build(chosen, counting_load(attempts))
    assert attempts == ["efficientnetb7"]


def test_an_exported_default_is_served_as_is(tmp_path: Path) -> None:
    fake_export(tmp_path, OFFLINE_BACKBONE)
    fake_export(tmp_path, "efficientnetb7")
    settings = Settings(_env_file=None, runtime_dir=tmp_path)
    assert loading.prefer_exported(settings) is settings


def test_the_index_choice_is_never_swapped_for_the_export(tmp_path: Path) -> None:
    """`settings_for_index` sets the backbone from the manifest: that counts as chosen."""
    fake_export(tmp_path, OFFLINE_BACKBONE)
    settings = Settings(_env_file=None, runtime_dir=tmp_path)
    from_index = settings.model_copy(update={"backbone": "efficientnetb7", "weights": "imagenet"})
    assert loading.prefer_exported(from_index) is from_index
