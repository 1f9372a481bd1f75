"""The report folder: Markdown, CSVs and valid PNG plots, from a study result made by hand."""

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.embedding import ExtractionStats
from index.evaluation.dataset import LabelledImage, prepare_dataset
from index.evaluation.report import write_report
from index.evaluation.runner import BackboneResult, BackboneSpec, StudyConfig, StudyResult
from index.evaluation.scoring import run_once
from index.evaluation.split import Split
from tests.synthetic import CatalogRow as Entry

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _image(product: str, label: str) -> LabelledImage:
    return LabelledImage(product, (label,), f"h-{product}", Path(f"{product}.jpg"))


def _backbone(label: str, network: str, shift: float) -> BackboneResult:
    catalog = [_image("a1", "sofa"), _image("b1", "lamp")]
    queries = [_image("a2", "sofa"), _image("b2", "lamp")]
    catalog_vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    runs = tuple(
        run_once(
            catalog,
            catalog_vectors,
            queries,
            np.array([[1.0, s], [s, 1.0]], dtype=np.float32),  # s > 1 swaps both answers
        )
        for s in (shift, 0.0)
    )
    name, _, weights = label.partition(":")
    return BackboneResult(
        spec=BackboneSpec(name, weights or "imagenet"),
        network=network,
        weights_id=weights or "imagenet",
        params=1_000_000 if weights else 4_000_000,
        dim=2,
        input_size=32,
        ms_per_image=3.5,
        load_average=1.25,
        runs=runs,
        extraction=ExtractionStats(cached=1, extracted=3, seconds=0.1),
    )


@pytest.fixture
def result() -> StudyResult:
    entries = [
        Entry(product, (label,), Path(f"{product}.jpg"), f"h-{product}")
        for product, label in [("a1", "sofa"), ("a2", "sofa"), ("b1", "lamp"), ("b2", "lamp")]
    ]
    config = StudyConfig(
        catalog=Path("tiny.csv"),
        backbones=(BackboneSpec("net", "imagenet"), BackboneSpec("other", "none")),
        runs=2,
        min_class=2,
    )
    return StudyResult(
        config=config,
        dataset=prepare_dataset(entries, min_class=2),
        splits=(Split(0, (0, 2), (1, 3)), Split(1, (0, 2), (1, 3))),
        backbones=(_backbone("net", "real_network", 0.0), _backbone("other:none", "resnet50", 2.0)),
        unreadable=0,
        seconds=12.0,
    )


def test_report_csvs_and_plots_are_written(result: StudyResult, tmp_path: Path) -> None:
    written = write_report(result, tmp_path / "out", command="snapfind evaluate --catalog tiny.csv")
    names = {p.name for p in written}
    assert names == {
        "report.md",
        "summary.csv",
        "runs.csv",
        "categories.csv",
        "scores.png",
        "accuracy_vs_params.png",
        "accuracy_vs_latency.png",
    }
    for png in (p for p in written if p.suffix == ".png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
        with Image.open(png) as opened:
            opened.verify()
            assert opened.size[0] > 300 and opened.size[1] > 200


def test_markdown_reports_scores_costs_and_the_network_that_ran(
    result: StudyResult, tmp_path: Path
) -> None:
    write_report(result, tmp_path, command="snapfind evaluate --catalog tiny.csv")
    text = (tmp_path / "report.md").read_text()
    assert "snapfind evaluate --catalog tiny.csv" in text
    assert "`real_network`" in text and "`resnet50`" in text
    # "net" answers both queries right in both runs; "other:none" is wrong in run 1 only
    row = next(line for line in text.splitlines() if line.startswith("| `net` |"))
    assert "1.000 ± 0.000" in row
    other = next(line for line in text.splitlines() if line.startswith("| `other:none` |"))
    assert "0.500 ± 0.707" in other  # Top-1: runs 0 and 1, sample std
    assert "Not measurable here: product R@1, product R@5 (no query" in text
    assert "1,000,000" in text and "3.5" in text
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (tmp_path / image).is_file()
    assert "| lamp | 1 |" in text and "| sofa | 1 |" in text


def test_csvs_hold_one_row_per_backbone_run_and_category(
    result: StudyResult, tmp_path: Path
) -> None:
    write_report(result, tmp_path)
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    runs = list(csv.DictReader((tmp_path / "runs.csv").open()))
    categories = list(csv.DictReader((tmp_path / "categories.csv").open()))
    assert [r["backbone"] for r in summary] == ["net", "other:none"]
    assert summary[0]["network"] == "real_network"
    assert float(summary[0]["acc5_mean"]) == 1.0
    assert float(summary[1]["top1_mean"]) == pytest.approx(0.5)
    assert summary[0]["r1_mean"] == ""  # not measurable: no product on both sides
    assert summary[0]["params"] == "4000000" and summary[0]["ms_per_image"] == "3.5"
    assert len(runs) == 4 and {r["seed"] for r in runs} == {"0", "1"}
    assert len(categories) == 4 and {r["category"] for r in categories} == {"sofa", "lamp"}


def test_a_missing_matplotlib_is_reported_before_the_study(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from index.evaluation.report import require_plotting
    from retrieval.errors import ConfigError

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigError, match=r"snapfind\[eval\]"):
        require_plotting()
