"""`snapfind evaluate --queries`: outside photos against the whole catalog, bad rows skipped."""

import csv
import shutil
from operator import attrgetter
from pathlib import Path

import pytest

from index.evaluation.metrics import macro_f1
from index.evaluation.outside import read_query_csv, score_outside
from retrieval.errors import ConfigError
from snapfind.cli import main
from tests.synthetic import write_shapes_catalog


def write_list(folder: Path, rows: list[tuple[str, str]], name: str = "photos.csv") -> Path:
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["photo", "category"])
        writer.writerows(rows)
    return path


def test_macro_f1_averages_per_true_label() -> None:
    # sofa: 1 right, 1 predicted wrongly as sofa (a bed) -> F1 2/3; bed: 1 of 2 right -> 2/3
    truth = ["sofa", "bed", "bed"]
    predicted = ["sofa", "sofa", "bed"]
    assert macro_f1(truth, predicted) == pytest.approx(2 / 3)
    # a label only predicted ("lamp") is not averaged, but costs the true label a miss
    assert macro_f1(["sofa", "sofa"], ["sofa", "lamp"]) == pytest.approx(2 / 3)


def test_the_list_keeps_good_rows_and_names_each_bad_one(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    path = write_list(
        tmp_path / "in",
        [("a.jpg", "sofa"), ("", "bed"), ("b.jpg", ""), ("../escape.jpg", "bed"),
         ("/etc/passwd", "bed"), ("sub/c.jpg", " chair ")],
    )  # fmt: skip
    queries = read_query_csv(path)
    assert [(p.name, p.category) for p in queries.photos] == [
        ("a.jpg", "sofa"),
        ("sub/c.jpg", "chair"),
    ]
    assert queries.photos[1].path == (tmp_path / "in" / "sub" / "c.jpg").resolve()
    assert queries.problems == (
        "photos.csv line 3: no photo, skipped",
        "photos.csv line 4: no category, skipped",
        "photos.csv line 5: ../escape.jpg is outside the list's folder, skipped",
        "photos.csv line 6: /etc/passwd is outside the list's folder, skipped",
    )


def test_a_file_that_is_not_a_photo_list_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "wrong.csv").write_text("image,label\na.jpg,sofa\n")
    with pytest.raises(ConfigError, match="needs the columns photo and category"):
        read_query_csv(tmp_path / "wrong.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00photo")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_query_csv(tmp_path / "binary.csv")
    with pytest.raises(ConfigError, match="cannot read the query list"):
        read_query_csv(tmp_path / "missing.csv")
    write_list(tmp_path, [("", "sofa")], "empty.csv")
    with pytest.raises(ConfigError, match="no usable row"):
        read_query_csv(tmp_path / "empty.csv")


def test_a_list_of_only_bad_rows_says_why_in_its_error(tmp_path: Path) -> None:
    """The error names the first row's reason and how many rows share it, not just "none"."""
    (tmp_path / "list").mkdir()
    elsewhere = [tmp_path / "photos" / f"{n}.jpg" for n in range(3)]
    path = write_list(
        tmp_path / "list",
        [(str(elsewhere[0]), "sofa"), ("a.jpg", ""), *((str(p), "bed") for p in elsewhere[1:])],
    )
    with pytest.raises(ConfigError) as raised:
        read_query_csv(path)
    assert str(raised.value) == (
        f"query list {path} has no usable row: 3 rows name a photo outside its folder "
        f"(first: {elsewhere[0]}); photo paths are relative to the list, in its folder or below; "
        "1 more row skipped for other reasons"
    )
    write_list(tmp_path, [], "header.csv")
    with pytest.raises(ConfigError, match=r"has no usable row \(no rows under its header\)"):
        read_query_csv(tmp_path / "header.csv")


def test_photos_of_categories_the_catalog_lacks_are_named_and_left_out(
    service, shapes_index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They could never match: scored, they would only pull the overall figures down."""
    images = shapes_index.catalog.parent / "images"
    for name in ("sofa-red", "lamp-blue"):
        shutil.copy(images / f"{name}.png", tmp_path / f"{name}.png")
    known = [("sofa-red.png", "sofa"), ("lamp-blue.png", "lamp")]
    unknown = [
        ("sofa-red.png", "armchair"),
        ("lamp-blue.png", "armchair"),
        ("lamp-blue.png", "Lamp"),
    ]
    searched: list[bytes] = []
    search = service.search_bytes
    monkeypatch.setattr(
        service, "search_bytes", lambda data, page: searched.append(data) or search(data, page)
    )

    mixed = score_outside(service, read_query_csv(write_list(tmp_path, known + unknown)))
    alone = score_outside(service, read_query_csv(write_list(tmp_path, known, "known.csv")))
    assert len(searched) == 2 * len(known)  # the others are not even searched
    figures = attrgetter("photos", "p5", "top1", "f1", "no_match", "per_class")
    assert mixed.photos == 2 and figures(mixed) == figures(alone)
    assert mixed.problems == (
        "3 photos with a category the catalog does not have, left out of the scores (no product "
        "could match): 'armchair' (2 photos), 'Lamp' (1 photo, the catalog spells it 'lamp')",
    )
    only_unknown = write_list(tmp_path, unknown, "unknown.csv")
    with pytest.raises(
        ConfigError, match=r"no photo of .*unknown\.csv can be scored: 3 photos with a category"
    ):
        score_outside(service, read_query_csv(only_unknown))


def test_evaluate_scores_outside_photos_through_the_product(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_shapes_catalog(tmp_path / "shapes", per_category=6)
    photos = tmp_path / "wild"
    photos.mkdir()
    # shoppers' photos that are copies of catalog photos: each must find its own product first
    picked = [("circles", 1), ("squares", 2), ("triangles", 3), ("triangles", 4)]
    rows = []
    for category, n in picked:
        shutil.copy(root / "shop" / category / f"{category}-{n}.jpg", photos / f"{category}{n}.jpg")
        rows.append((f"{category}{n}.jpg", category))
    (photos / "notes.jpg").write_text("not a photo")
    rows += [("notes.jpg", "circles"), ("gone.jpg", "squares"), ("", "circles")]
    rows.append(("circles1.jpg", "ovals"))  # no such category in the catalog: left out
    queries = write_list(photos, rows)
    out = tmp_path / "report"
    argv = [
        "evaluate", "--catalog", str(root), "--out", str(out), "--cache", str(tmp_path / "c"),
        "--backbones", "resnet50:none", "--input-size", "32", "--runs", "1", "--no-progress",
        "--queries", str(queries),
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    line = next(text for text in captured.out.splitlines() if "outside photos" in text)
    assert "outside photos (4): " in line and "top-1 1.000" in line and "macro F1 1.000" in line
    assert "macro F1" in captured.out.splitlines()[0]
    skipped = [text for text in captured.err.splitlines() if text.startswith("skipped: ")]
    unknown = (
        "1 photo with a category the catalog does not have, left out of the scores (no product "
        "could match): 'ovals' (1 photo)"
    )
    assert skipped == [
        "skipped: photos.csv line 8: no photo, skipped",
        f"skipped: {unknown}",
        "skipped: notes.jpg: not a supported image, skipped",
        f"skipped: gone.jpg: cannot open {photos / 'gone.jpg'}: No such file or directory, skipped",
    ]
    report = (out / "report.md").read_text()
    assert "## Outside photos (`photos.csv`) against the whole catalog" in report
    assert "--queries" in report and "Skipped (4):" in report and f"- {unknown}" in report
    table = list(csv.DictReader((out / "outside.csv").open()))
    by_class = {row["class"]: row for row in table}
    assert by_class["(all)"]["photos"] == "4" and float(by_class["(all)"]["top1"]) == 1.0
    assert by_class["triangles"]["photos"] == "2"
    assert float(by_class["(all)"]["macro_f1"]) == 1.0
