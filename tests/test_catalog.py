"""Catalog ingestion: folder trees, CSV and JSONL manifests, and label merging."""

import json
from pathlib import Path

import pytest
from PIL import Image

from index.catalog import catalog_source, describe_source, load_catalog, read_catalog
from retrieval.errors import ConfigError
from retrieval.limits import MAX_MANIFEST_LINE
from tests.synthetic import draw_item, write_shapes_catalog


def test_folder_tree_with_source_level(tmp_path: Path) -> None:
    entries = read_catalog(write_shapes_catalog(tmp_path, per_category=2))
    assert len(entries) == 6  # the copy filed under squares merges into its circle
    by_id = {e.id: e for e in entries}
    merged = by_id["shop/circles/circles-0"]
    assert merged.categories == ("circles", "squares")
    assert merged.extra == {"source": "shop"}
    assert by_id["shop/triangles/triangles-1"].categories == ("triangles",)


def test_folder_tree_without_source_level(tmp_path: Path) -> None:
    (tmp_path / "beds").mkdir()
    draw_item("squares", 1).save(tmp_path / "beds" / "kura_bed.png")
    (tmp_path / "loose.jpg").write_bytes(b"no category")
    [entry] = read_catalog(tmp_path)
    assert entry.categories == ("beds",) and entry.title == "kura bed" and entry.extra == {}


def test_csv_manifest_with_multi_labels_and_extra_fields(tmp_path: Path) -> None:
    draw_item("circles", 1).save(tmp_path / "a.jpg")
    draw_item("squares", 2).save(tmp_path / "b.jpg")
    (tmp_path / "catalog.csv").write_text(
        "id,title,categories,image,url,price,colour\n"
        "p1,Round table,tables|kitchen,a.jpg,https://shop/p1,129.00,oak\n"
        "p2,Box shelf, shelving ; storage ,b.jpg,,,\n"
        "p3,Gone,misc,missing.jpg,,,\n",
        encoding="utf-8",
    )
    catalog = load_catalog(tmp_path / "catalog.csv")
    first, second = catalog.entries
    assert (first.id, first.categories, first.url, first.price) == (
        "p1",
        ("tables", "kitchen"),
        "https://shop/p1",
        "129.00",
    )
    assert first.extra == {"colour": "oak"}
    assert second.categories == ("shelving", "storage") and second.url is None
    assert [path for path, _ in catalog.unreadable] == [str(tmp_path / "missing.jpg")]


def test_ikea_style_category_column(tmp_path: Path) -> None:
    draw_item("circles", 1).save(tmp_path / "x.jpg")
    (tmp_path / "c.csv").write_text("id,title,type,category,image\n1,MALM,Bed frame,bed,x.jpg\n")
    [entry] = read_catalog(tmp_path / "c.csv")
    assert entry.categories == ("bed",) and entry.extra == {"type": "Bed frame"}


def test_jsonl_rows_sharing_an_id_are_one_product_with_all_labels(tmp_path: Path) -> None:
    draw_item("circles", 1).save(tmp_path / "front.jpg")
    draw_item("circles", 2).save(tmp_path / "side.jpg")
    rows = [
        {"id": "sofa-1", "title": "Sofa", "categories": ["sofas"], "image": "front.jpg"},
        {"id": "sofa-1", "title": "Sofa", "categories": "living room", "image": "side.jpg"},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    entries = read_catalog(path)
    assert len(entries) == 2
    assert all(e.categories == ("sofas", "living room") for e in entries)


def test_overlong_jsonl_line_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    title = "x" * (MAX_MANIFEST_LINE + 10)
    path.write_text(json.dumps({"id": "1", "title": title, "image": "a.png"}) + "\n")
    with pytest.raises(ConfigError, match=rf"c\.jsonl:1: line longer than {MAX_MANIFEST_LINE}"):
        load_catalog(path)
    row = {"id": "1", "title": "", "image": "a.png"}
    row["title"] = "x" * (MAX_MANIFEST_LINE - len(json.dumps(row)))  # exactly at the limit
    path.write_text(json.dumps(row) + "\n")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "a.png")
    assert [e.title for e in load_catalog(path).entries] == [row["title"]]


def test_csv_row_with_more_cells_than_columns_is_refused_by_its_line(tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), "red").save(tmp_path / "a.png")
    path = tmp_path / "catalog.csv"
    path.write_text("id,title,categories,image\np1,Sofa,sofas,a.png,\n", encoding="utf-8")
    assert [e.extra for e in load_catalog(path).entries] == [{}]  # a trailing empty cell: fine
    path.write_text("id,title,categories,image\np1,Sofa, grey,sofas,a.png\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"catalog\.csv:2: 5 cells for 4 columns; put a value"):
        load_catalog(path)  # unquoted, the comma shifted the category into the image column


def test_bad_jsonl_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 1}\n{not json\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.jsonl:2"):
        read_catalog(path)


def test_unknown_catalog_form_is_refused(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    with pytest.raises(ConfigError, match=r"folder, a \.csv or a \.jsonl"):
        read_catalog(tmp_path / "x.png")
    with pytest.raises(ConfigError, match="not found"):
        read_catalog(tmp_path / "nowhere")


def test_a_folder_holding_a_manifest_is_read_through_it(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    for number in range(2):
        draw_item("circles", number).save(tmp_path / "photos" / f"p{number}.png")
    (tmp_path / "catalog.csv").write_text(
        "id,title,category,image\n"
        "a,Round table,table,photos/p0.png\n"
        "b,Round stool,chair,photos/p1.png\n"
    )
    assert catalog_source(tmp_path) == tmp_path / "catalog.csv"
    assert describe_source(catalog_source(tmp_path)).endswith("a CSV manifest")
    entries = read_catalog(tmp_path)
    assert [(e.id, e.title, e.categories) for e in entries] == [
        ("a", "Round table", ("table",)),
        ("b", "Round stool", ("chair",)),
    ]  # not a folder tree whose one category would be "photos"


def test_a_missing_catalog_is_not_described_as_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="catalog not found"):
        describe_source(catalog_source(tmp_path / "nowhere"))


def test_a_folder_with_a_manifest_and_unlisted_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sofa").mkdir()
    draw_item("squares", 0).save(tmp_path / "sofa" / "listed.png")
    draw_item("squares", 1).save(tmp_path / "sofa" / "loose.png")
    (tmp_path / "catalog.csv").write_text("id,title,category,image\na,A,sofa,sofa/listed.png\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "1 images it does not list (e.g. sofa/loose.png)" in message
    assert str(tmp_path / "catalog.csv") in message
    assert [e.id for e in read_catalog(tmp_path / "catalog.csv")] == ["a"]  # explicit: fine
    (tmp_path / "catalog.jsonl").write_text("")
    with pytest.raises(ConfigError, match=r"holds both catalog\.csv and catalog\.jsonl"):
        load_catalog(tmp_path)


def test_a_binary_file_named_csv_is_refused_in_one_printable_line(tmp_path: Path) -> None:
    """Its header was echoed raw: NULs and escape codes in the operator's terminal."""
    (tmp_path / "catalog.csv").write_bytes(b"\x00\x1b[2Jbinary\x07,x\n")
    with pytest.raises(ConfigError, match="has no `image` column") as refused:
        load_catalog(tmp_path / "catalog.csv")
    assert str(refused.value).isprintable()
