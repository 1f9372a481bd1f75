"""Defect sweep of the command line: a bad --sheet, an empty --category and an evaluate --out
under a file refused before any work, catalog pictures drawn through the bounded decode, and
one line per hit whatever the titles."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval.objects import MAX_OBJECTS
from retrieval.results import FoundObject, Hit, Product, QueryResult
from snapfind.cli import main
from snapfind.commands import evaluate, search, search_objects
from snapfind.contact_sheet import MAX_TILES, TILE, sheet
from tests.synthetic import TINY_ARGS, write_shapes_catalog


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 64), "red").save(path)
    return path


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the model or index fails the test: a refusal must come before any work."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the model was loaded for a request that should be refused")

    monkeypatch.setattr(search, "load_service", refuse)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("folder", "is a folder"),
        ("sheet.jpgx", "does not end in .png"),
    ],
)
@pytest.mark.usefixtures("no_model")
def test_a_sheet_path_that_cannot_be_written_is_refused_before_searching(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    (tmp_path / "folder").mkdir()
    code = main(["search", str(photo), "--index", str(tmp_path), "--sheet", str(tmp_path / name)])
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert code == 2 and captured.out == ""
    assert line.startswith("snapfind: error: --sheet ") and reason in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "photo.jpg"]


@pytest.mark.parametrize("objects", [False, True])
@pytest.mark.usefixtures("no_model")
def test_a_sheet_too_large_to_draw_is_refused_before_searching(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], objects: bool
) -> None:
    rows_per_photo = MAX_OBJECTS if objects else 1
    photos = [str(photo)] * (MAX_TILES // (6 * rows_per_photo) + 1)  # -k 5: 6 tiles a row
    out = tmp_path / "sheet.png"
    argv = ["search", *photos, "--index", str(tmp_path), "-k", "5", "--sheet", str(out)]
    code = main(argv + (["--objects"] if objects else []))
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and "too large to draw" in line and "search fewer photos" in line
    assert not out.exists()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_png(width: int, height: int) -> bytes:
    """A PNG that declares `width` × `height` over a few bytes of pixels: what a catalog
    picture replaced after the build by a huge one looks like to a reader of headers."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0"))
        + _chunk(b"IEND", b"")
    )


def test_a_sheet_draws_a_huge_catalog_picture_as_no_image(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_huge_png(14_000, 14_000))  # past Pillow's own bomb error, too
    ordinary = tmp_path / "ok.png"
    Image.new("RGB", (300, 200), "blue").save(ordinary)
    query = Image.new("RGB", (TILE, TILE + 34), "white")
    hits = [
        Hit(Product("a", "bomb", ("x",), bomb), 0.9),
        Hit(Product("b", "ok", ("x",), ordinary), 0.8),
    ]
    picture = np.asarray(sheet([(query, hits)]))
    assert picture.shape == (TILE + 34, 3 * TILE, 3)
    assert (picture[:TILE, TILE : 2 * TILE] == 255).all(axis=2).mean() > 0.9  # blank: no image
    assert (picture[TILE // 2, 2 * TILE + TILE // 2] == (0, 0, 255)).all()  # drawn as before


def test_text_output_keeps_one_line_per_hit_whatever_the_title() -> None:
    title = 'Sofa "Big"\nsecond line\u2028\x1b[31mred'
    hit = Hit(Product("1", title, ("sofa\nbed",), None), 0.5)
    vector = np.zeros(4, dtype=np.float32)
    plain = search._as_text(Path("p.jpg"), QueryResult(vector, [hit]))
    found = FoundObject((0, 0, 9, 9), "sofa", 0.4, QueryResult(vector, [hit]))
    boxed = search_objects._as_text(Path("p.jpg"), [hit], [found])
    for text, lines in ((plain, 2), (boxed, 3)):
        assert len(text.splitlines()) == lines and "\x1b" not in text
        assert 'Sofa "Big" second line' in text


@pytest.mark.parametrize("out", ["taken.txt", "taken.txt/report"])
def test_evaluate_out_under_a_file_is_refused_before_the_study(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    out: str,
) -> None:
    def no_study(*_: object, **__: object) -> None:
        raise AssertionError("the study ran for a report that cannot be written")

    monkeypatch.setattr(evaluate, "run_study", no_study)
    (tmp_path / "taken.txt").write_text("keep me", encoding="utf-8")
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    argv = ["evaluate", "--catalog", str(catalog), "--backbones", "efficientnetb0:none"]
    code = main([*argv, "--out", str(tmp_path / out), "--no-progress"])
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and line.startswith(f"snapfind: error: --out {tmp_path / out}: ")
    assert "is a file, not a folder" in line
    assert (tmp_path / "taken.txt").read_text(encoding="utf-8") == "keep me"


def test_an_empty_category_is_refused_not_answered_with_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    build = ["index", "build", "--catalog", str(catalog), "--out", str(tmp_path / "idx")]
    assert main([*build, "--no-progress", *TINY_ARGS]) == 0
    capsys.readouterr()  # the build's summary
    photo = catalog / "shop" / "circles" / "circles-0.jpg"
    code = main(["search", str(photo), "--index", str(tmp_path / "idx"), "--category", ""])
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert code == 2 and captured.out == ""
    assert line.startswith("snapfind: error: no category '' in this index; its categories: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["index", "build", "--catalog", "CATALOG", "--out", ""],
        ["index", "build", "--catalog", "", "--out", "out"],
        ["search", "PHOTO", "--index", ""],
        ["search", "PHOTO", "--sheet", ""],
        ["search", ""],
        ["export", "--runtime-dir", ""],
        ["tune", "--out", " "],
        ["evaluate", "--catalog", "CATALOG", "--backbones", "efficientnet-lite0", "--out", ""],
        ["bot", "--catalog", ""],
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    argv: list[str],
    photo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)  # `index build --out ""` built the index into the current folder
    argv = [{"CATALOG": str(catalog), "PHOTO": str(photo)}.get(a, a) for a in argv]
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert "an empty path: name a file or folder" in capsys.readouterr().err
    assert list(here.iterdir()) == []
