"""The snapfind command: exit codes, one-line errors, text and JSON output, contact sheets."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from snapfind.cli import main
from tests.synthetic import write_shapes_catalog

TINY = ["--backbone", "efficientnetb0", "--weights", "none", "--input-size", "64"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    catalog = write_shapes_catalog(root / "catalog", per_category=3)
    code = main(
        [
            "index",
            "build",
            "--catalog",
            str(catalog),
            "--out",
            str(root / "idx"),
            "--no-progress",
            *TINY,
        ]
    )
    assert code == 0
    return root


def test_build_prints_a_summary(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "index",
            "build",
            "--catalog",
            str(built / "catalog"),
            "--out",
            str(built / "idx"),
            "--no-progress",
            *TINY,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "9 products" in out and "embedded 0, reused 9" in out


def test_search_text_json_and_sheet(
    built: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    photo = built / "catalog" / "shop" / "triangles" / "triangles-1.jpg"
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"nope")
    sheet = tmp_path / "sheet.png"
    args = [
        "search",
        str(photo),
        str(junk),
        "--index",
        str(built / "idx"),
        "-k",
        "3",
        "--json",
        "--sheet",
        str(sheet),
        *TINY,
    ]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 1  # one of the two photos could not be read
    assert "junk.jpg: I couldn't read that as an image" in captured.err
    [line] = captured.out.splitlines()
    result = json.loads(line)
    assert result["photo"] == str(photo) and len(result["results"]) == 3
    assert result["results"][0]["id"] == "shop/triangles/triangles-1"
    assert result["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    with Image.open(sheet) as image:
        assert image.size == (4 * 160, 160 + 34)
    assert (
        main(["search", str(photo), "--index", str(built / "idx"), "--category", "circles", *TINY])
        == 0
    )
    text = capsys.readouterr().out
    assert "1. " in text and "[circles" in text and "[triangles" not in text


def test_errors_are_one_line_with_exit_codes(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "x.jpg", "--index", str(tmp_path), *TINY]) == 1
    assert capsys.readouterr().err.strip().startswith("snapfind: error: no index at")
    mismatch = [
        "search",
        "x.jpg",
        "--index",
        str(built / "idx"),
        "--backbone",
        "efficientnetb0",
        "--weights",
        "none",
    ]
    assert main(mismatch) == 1
    assert "input_size 64 (index) vs 224 (extractor)" in capsys.readouterr().err
    assert (
        main(
            [
                "index",
                "build",
                "--catalog",
                str(tmp_path / "none.csv"),
                "--out",
                str(tmp_path),
                *TINY,
            ]
        )
        == 2
    )
    assert "catalog not found" in capsys.readouterr().err
    assert main(["index", "build", "--out", str(tmp_path), "--backbone", "alexnet"]) == 2
    assert "unknown backbone 'alexnet'" in capsys.readouterr().err


def test_health_and_backbones(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--index", str(built / "idx"), *TINY]) == 0
    assert "healthy: 9 products, efficientnetb0" in capsys.readouterr().out
    assert main(["backbones"]) == 0
    listing = capsys.readouterr().out
    assert "efficientnetb7" in listing and "2560" in listing and "(default)" in listing


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "snapfind", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "index" in done.stdout and "search" in done.stdout
