"""The snapfind command: exit codes, one-line errors, text and JSON output, contact sheets."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from snapfind.cli import main
from tests.synthetic import TINY_ARGS as TINY
from tests.synthetic import write_shapes_catalog


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
    ]  # no extractor options: the index names its own
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
    assert main(["search", str(photo), "--index", str(built / "idx"), "--category", "circles"]) == 0
    text = capsys.readouterr().out
    assert "1. " in text and "[circles" in text and "[triangles" not in text


def test_errors_are_one_line_with_exit_codes(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["search", "x.jpg", "--index", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().startswith("snapfind: error: no index at")
    monkeypatch.setenv("SNAPFIND_BACKBONE", "efficientnet-lite0")  # says otherwise than the index
    assert main(["search", "x.jpg", "--index", str(built / "idx")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"snapfind: error: the index at {built / 'idx'} was built by ")
    assert "efficientnetb0 (none:seed1234 weights, 64 px)" in line
    assert "SNAPFIND_BACKBONE / --backbone asks for efficientnet-lite0" in line
    assert "unset it" in line and "--backbone efficientnet-lite0 --full" in line
    monkeypatch.delenv("SNAPFIND_BACKBONE")
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


def test_a_sheet_into_a_missing_folder_is_one_line_after_the_results(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = built / "catalog" / "shop" / "circles" / "circles-1.jpg"
    sheet = tmp_path / "nodir" / "x.png"
    assert main(["search", str(photo), "--index", str(built / "idx"), "--sheet", str(sheet)]) == 1
    captured = capsys.readouterr()
    assert "1. " in captured.out  # the results still reach the user before the write fails
    [line] = captured.err.strip().splitlines()
    assert line == f"snapfind: error: cannot use {sheet}: No such file or directory"
    assert not sheet.parent.exists()


def test_index_build_out_an_existing_file_is_one_line(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me", encoding="utf-8")
    args = ["index", "build", "--catalog", str(built / "catalog"), "--out", str(taken)]
    assert main([*args, "--no-progress", *TINY]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == f"snapfind: error: cannot use {taken}: File exists"
    assert taken.read_text(encoding="utf-8") == "keep me"


def test_health_and_backbones(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--index", str(built / "idx")]) == 0
    assert "healthy: 9 products, efficientnetb0 at 64 px, " in capsys.readouterr().out
    assert main(["backbones"]) == 0
    listing = capsys.readouterr().out
    assert "efficientnetb7" in listing and "2560" in listing and "(default)" in listing


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "snapfind", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "index" in done.stdout and "search" in done.stdout


def test_an_index_built_from_a_weights_file_asks_for_that_file(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval.errors import ConfigError
    from retrieval.loading import settings_for_index
    from retrieval.manifest import MANIFEST
    from retrieval.settings import Settings

    release = tmp_path / "release"
    shutil.copytree((built / "idx" / "current").resolve(), release)
    weights = tmp_path / "mine.weights.h5"
    weights.write_bytes(b"pretend weights")
    manifest = json.loads((release / MANIFEST).read_text())
    manifest["fingerprint"]["weights_id"] = (
        "sha256:" + hashlib.sha256(b"pretend weights").hexdigest()[:16]
    )
    (release / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(
        ConfigError, match=r"built from a weights file \(sha256:\w+\): set SNAPFIND_WEIGHTS"
    ):
        settings_for_index(Settings(_env_file=None), release)
    chosen = settings_for_index(Settings(_env_file=None, weights=str(weights)), release)
    assert (chosen.backbone, chosen.weights, chosen.input_size) == (
        "efficientnetb0",
        str(weights),
        64,
    )


def test_offline_first_build_falls_back_to_the_packaged_backbone_unless_one_was_chosen(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from retrieval import loading
    from retrieval.errors import WeightsUnavailableError
    from retrieval.settings import Settings

    built_with: list[str] = []

    def fake_load(settings: Settings, *, warmup: bool = False) -> str:
        built_with.append(settings.backbone)
        if settings.backbone == "efficientnetb7":
            raise WeightsUnavailableError("could not download the ImageNet weights of b7")
        return f"extractor {settings.backbone}"

    default = Settings(_env_file=None, runtime_dir=tmp_path)  # nothing exported
    assert loading.load_extractor_to_build(default, fake_load) == "extractor efficientnet-lite0"
    assert built_with == ["efficientnetb7", "efficientnet-lite0"]
    assert "building with efficientnet-lite0, whose weights ship with snapfind" in caplog.text
    chosen = Settings(_env_file=None, backbone="efficientnetb7", runtime_dir=tmp_path)
    with pytest.raises(WeightsUnavailableError):
        loading.load_extractor_to_build(chosen, fake_load)


def test_search_says_when_nothing_in_the_catalog_looks_like_the_photo(
    built: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the index's calibrated threshold the CLI says so, as the bot does, and still
    lists the closest products; a catalog photo is a match."""
    from retrieval.index_store import CatalogIndex

    photo = built / "catalog" / "shop" / "triangles" / "triangles-1.jpg"
    search = ["search", str(photo), "--index", str(built / "idx"), "-k", "2"]
    assert main([*search, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["no_match"] is False
    monkeypatch.setattr(CatalogIndex, "no_match", lambda self, hits: True)  # below the threshold
    assert main([*search, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["no_match"] is True and len(result["results"]) == 2
    assert main(search) == 0
    first, *listed = capsys.readouterr().out.splitlines()
    assert "no good match" in first and len(listed) == 2


def test_a_tiny_photo_is_one_line_with_or_without_objects(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8), "grey").save(tiny)
    for objects in ([], ["--objects"]):
        assert main(["search", str(tiny), "--index", str(built / "idx"), *objects]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.strip() == (
            f"{tiny}: That image is too small to search (8×8 pixels). Please send a larger photo."
        )
