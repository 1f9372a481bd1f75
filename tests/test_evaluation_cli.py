"""`snapfind evaluate` end to end on a small synthetic catalog, tiny random-weight backbones."""

import csv
from pathlib import Path

import pytest

from index.evaluation.runner import BackboneSpec, StudyConfig, parse_backbones
from retrieval.errors import ConfigError
from snapfind.cli import main
from snapfind.commands.evaluate import evaluate
from tests.synthetic import write_shapes_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 shape classes x 6 photos; one circle photo also filed under squares (two labels)."""
    return write_shapes_catalog(tmp_path_factory.mktemp("shapes"), per_category=6)


def test_parse_backbones_reads_name_weights_pairs() -> None:
    specs = parse_backbones("efficientnet-lite0, ResNet50:None", "imagenet")
    assert specs == (
        BackboneSpec("efficientnet-lite0", "imagenet"),
        BackboneSpec("resnet50", "none"),
    )
    assert [s.label for s in specs] == ["efficientnet-lite0", "resnet50:none"]
    with pytest.raises(ConfigError, match="unknown backbone"):
        parse_backbones("alexnet")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_backbones("resnet50:none,resnet50:none")
    with pytest.raises(ConfigError, match="at least one"):
        parse_backbones(" , ")


def test_evaluate_writes_the_report_and_reuses_cached_features(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, cache = tmp_path / "report", tmp_path / "cache"
    argv = [
        "evaluate", "--catalog", str(catalog), "--out", str(out), "--cache", str(cache),
        "--backbones", "efficientnetb0,resnet50", "--weights", "none", "--input-size", "32",
        "--runs", "2", "--augment-index", "1", "--augment-queries", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "efficientnetb0:none" in printed and "Acc@5" in printed
    for name in ("report.md", "summary.csv", "runs.csv", "categories.csv", "scores.png"):
        assert (out / name).is_file()
    text = (out / "report.md").read_text()
    assert "`efficientnetb0`" in text and "`resnet50`" in text  # the Keras models' own names
    assert "1 augmented copies per catalog image" in text
    assert "crop, rotation and colour jitter" in text
    assert "--backbones efficientnetb0:none,resnet50:none" in text
    runs = list(csv.DictReader((out / "runs.csv").open()))
    assert len(runs) == 4
    # 18 distinct photos, 6 per primary class: round(0.2 x 6) = 1 query per class
    assert {r["queries"] for r in runs} == {"3"}
    # every catalog image is indexed twice (original + one augmented copy)
    assert {r["catalog_vectors"] for r in runs} == {str(2 * 15)}

    again = evaluate(
        StudyConfig(
            catalog=catalog,
            backbones=(BackboneSpec("resnet50", "none"),),
            runs=2,
            augment_index=1,
            augment_queries=True,
            input_size=32,
            cache=cache,
        ),
        tmp_path / "again",
        progress=False,
    )
    resnet = again.backbones[0]
    assert resnet.extraction.extracted == 0 and resnet.extraction.cached > 0
    summary = csv.DictReader((out / "summary.csv").open())
    first = next(row for row in summary if row["network"] == "resnet50")
    assert float(first["acc5_mean"]) == pytest.approx(resnet.mean("acc5"), abs=1e-4)


def test_a_catalog_without_a_big_enough_class_is_a_one_line_error(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "evaluate", "--catalog", str(catalog), "--out", str(tmp_path / "out"),
        "--backbones", "resnet50:none", "--min-class", "50", "--cache", str(tmp_path / "c"),
    ]  # fmt: skip
    assert main(argv) == 2
    assert "no class has 50 or more distinct images" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
