"""Regression tests for the outside audit (issue 11): each hostile input that once cost
gigabytes, hung, leaked a file or printed a traceback is now bounded and refused in one line.

The bot's items are in tests/test_hardening_bot.py.
"""

import io
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.build import BuildOptions, build_index
from index.catalog import load_catalog
from retrieval.bounded_read import read_image_file
from retrieval.decode import decode_image
from retrieval.errors import ConfigError, ImageError, SnapfindError
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS
from retrieval.resize import to_square
from snapfind.cli import main
from tests.synthetic import draw_item, jpeg_bytes, write_shapes_catalog

QUIET = BuildOptions(progress=False, batch_size=4)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- 1. pad-to-square amplification -------------------------------------------------------


@pytest.mark.parametrize("size", [(20_000, 2), (1_000_000, 1), (1, 15_000)])
def test_thin_strips_are_refused_on_their_header(size: tuple[int, int]) -> None:
    data = png(Image.new("L", size, 128))
    assert len(data) < 5_000  # tiny files: the audit's 200-byte 20000×2 and 3 KB 1,000,000×1
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert "thin strip" in caught.value.user_message
    assert f"{size[0]}×{size[1]}" in caught.value.user_message


def test_to_square_resizes_before_padding_so_a_strip_costs_no_square() -> None:
    strip = np.zeros((1, 1_000_000, 3), dtype=np.uint8)  # padded first: a 3 TB canvas
    square = to_square(strip, 64)
    assert square.shape == (64, 64, 3)
    assert (square[:31] == 255).all() and (square[32:] == 255).all()  # white above and below
    assert square[31].max() < 128  # the strip itself, one row, centred


def test_to_square_keeps_the_aspect_and_pads_with_white() -> None:
    wide = np.zeros((50, 100, 3), dtype=np.uint8)
    square = to_square(wide, 64)
    assert (square[:15] == 255).all() and (square[49:] == 255).all()
    assert (square[18:46] < 10).all()  # the black image, 32 px tall, centred


def test_longest_side_and_canvas_are_bounded() -> None:
    from retrieval.limits import ImageLimits  # new in issue 11

    data = png(Image.new("L", (3000, 300)))
    with pytest.raises(ImageError, match="3000x300"):
        decode_image(data, limits=ImageLimits(max_side=2000))
    with pytest.raises(ImageError, match="canvas"):
        decode_image(data, limits=ImageLimits(max_canvas_bytes=800_000))  # L: 900,000 bytes
    assert decode_image(data).shape == (300, 3000, 3)


# --- 8. float TIFF ---------------------------------------------------------------------------


def test_float32_tiff_in_0_to_1_is_not_black() -> None:
    pixels = np.full((16, 16), 0.5, dtype=np.float32)
    pixels[:8] = 1.0
    buffer = io.BytesIO()
    Image.fromarray(pixels, "F").save(buffer, format="TIFF")
    array = decode_image(buffer.getvalue())
    assert 250 <= array[0, 0, 0] <= 255 and 120 <= array[12, 0, 0] <= 135


# --- 4. reads without bounds -----------------------------------------------------------------


def _catalog_with(tmp_path: Path, rows: list[str]) -> Path:
    """A CSV catalog in tmp_path/shop: three real images plus the given `image` values."""
    shop = tmp_path / "shop"
    (shop / "img").mkdir(parents=True)
    lines = ["id,title,category,image"]
    for n in range(3):
        draw_item("circles", seed=n).save(shop / "img" / f"ok{n}.jpg")
        lines.append(f"ok{n},Good {n},circles,img/ok{n}.jpg")
    lines += [f"bad{n},Bad {n},circles,{image}" for n, image in enumerate(rows)]
    (shop / "catalog.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return shop / "catalog.csv"


def test_catalog_reads_regular_files_only_and_never_blocks(tmp_path: Path) -> None:
    catalog = _catalog_with(tmp_path, ["img/fifo.jpg", "img/zero.jpg", "img/big.jpg"])
    os.mkfifo(catalog.parent / "img" / "fifo.jpg")  # Path.read_bytes() on it waits forever
    (catalog.parent / "img" / "zero.jpg").symlink_to("/dev/zero")  # outside, and endless
    with (catalog.parent / "img" / "big.jpg").open("wb") as handle:
        handle.truncate(21 * 1024 * 1024)  # sparse: over the 20 MB limit, costs no disk
    started = time.perf_counter()
    loaded = load_catalog(catalog)
    assert time.perf_counter() - started < 10
    assert sorted(e.id for e in loaded.entries) == ["ok0", "ok1", "ok2"]
    reasons = dict(loaded.unreadable)
    assert "not a regular file" in reasons[str(catalog.parent / "img" / "fifo.jpg")]
    assert "outside the catalog folder" in reasons[str(catalog.parent / "img" / "zero.jpg")]
    assert "limit" in reasons[str(catalog.parent / "img" / "big.jpg")]


def test_a_directory_is_refused_in_one_line_and_its_descriptor_closed(tmp_path: Path) -> None:
    folder = tmp_path / "album.jpg"  # os.open succeeds on a folder; reading it must not
    folder.mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(ImageError, match="is not a regular file") as caught:
            read_image_file(folder, 1024)
        assert caught.value.user_message == "That is not an image file."
    assert len(os.listdir("/proc/self/fd")) == before  # 20 refusals, no descriptor kept


def test_a_folder_named_like_an_image_is_unreadable_and_the_build_goes_on(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    (catalog / "shop" / "circles" / "x.jpg").mkdir()
    report = build_index(catalog, tmp_path / "index", tiny_extractor, QUIET)
    assert (report.products, report.unreadable) == (3, 1)
    [listed] = (report.release / "unreadable.tsv").read_text(encoding="utf-8").splitlines()
    assert listed.startswith(f"{(catalog / 'shop' / 'circles' / 'x.jpg').resolve()}\t")
    assert listed.endswith("is not a regular file")


# --- 5. catalog paths leave the catalog ------------------------------------------------------


def test_catalog_images_stay_inside_the_catalog_folder(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    draw_item("squares", seed=7).save(outside / "secret.jpg")
    rows = ["../../../../etc/passwd", "/etc/hostname", "/proc/self/environ"]
    rows += ["../elsewhere/secret.jpg", str(outside / "secret.jpg"), "img/link.jpg"]
    catalog = _catalog_with(tmp_path, rows)
    (catalog.parent / "img" / "link.jpg").symlink_to(outside / "secret.jpg")
    loaded = load_catalog(catalog)
    assert sorted(e.id for e in loaded.entries) == ["ok0", "ok1", "ok2"]
    assert len(loaded.unreadable) == 6
    assert all("outside the catalog folder" in why for _, why in loaded.unreadable)


def test_allow_root_admits_an_operator_named_folder(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    outside = tmp_path / "nas"
    outside.mkdir()
    draw_item("squares", seed=7).save(outside / "shared.jpg")
    catalog = _catalog_with(tmp_path, [str(outside / "shared.jpg"), "/etc/hostname"])
    options = BuildOptions(progress=False, batch_size=4, allow_roots=(outside,))
    report = build_index(catalog, tmp_path / "index", tiny_extractor, options)
    assert (report.products, report.unreadable) == (4, 1)
    listed = (report.release / "unreadable.tsv").read_text(encoding="utf-8")
    assert listed.startswith("/etc/hostname\toutside the catalog folder")


def test_a_catalog_with_every_image_outside_says_why_it_has_none(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """A CSV written elsewhere with absolute paths: the error names the reason and the way
    out (--allow-root), not only that nothing was readable."""
    outside = tmp_path / "nas"
    outside.mkdir()
    draw_item("squares", seed=7).save(outside / "shared.jpg")
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "catalog.csv").write_text(
        f"id,title,category,image\na,A,squares,{outside}/shared.jpg\n"
    )
    with pytest.raises(SnapfindError, match=r"no readable images: 1 unreadable.*--allow-root"):
        build_index(shop / "catalog.csv", tmp_path / "index", tiny_extractor, BuildOptions())


def test_index_build_cli_takes_allow_root(tmp_path: Path) -> None:
    from snapfind.cli import parser

    args = parser().parse_args(
        ["index", "build", "--allow-root", "/a", "--allow-root", "/b", "--catalog", "c"]
    )
    assert args.allow_root == [Path("/a"), Path("/b")]


# --- 3. a failed build wipes the cache; two builds at once ------------------------------------


def test_failed_build_leaves_the_vector_cache_as_it_was(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    good = write_shapes_catalog(tmp_path / "good", per_category=2)
    first = build_index(good, tmp_path / "index", tiny_extractor, QUIET)
    broken = tmp_path / "broken" / "shop" / "chairs"
    broken.mkdir(parents=True)
    for n in range(3):
        (broken / f"junk{n}.jpg").write_bytes(b"not a jpeg at all " * n + b"x")
    with pytest.raises(SnapfindError, match="could be decoded"):
        build_index(tmp_path / "broken", tmp_path / "index", tiny_extractor, QUIET)
    report = build_index(good, tmp_path / "index", tiny_extractor, QUIET)
    assert (report.embedded, report.reused) == (0, first.embedded)  # nothing re-embedded


HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, sys
    handle = open(sys.argv[1], "a+")
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.write("4242\\n"); handle.flush()
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_second_build_into_one_folder_is_refused_until_the_first_dies(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=1)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    holder = subprocess.Popen(  # another build, as far as the lock can tell
        [sys.executable, "-c", HOLD_LOCK, str(index_dir / ".build.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SnapfindError, match="another build") as caught:
            build_index(catalog, index_dir, tiny_extractor, QUIET)
        assert "\n" not in str(caught.value)
        assert not (index_dir / "current").exists()
    finally:
        holder.kill()  # kill -9: the kernel drops the lock with the process
        holder.wait()
    assert build_index(catalog, index_dir, tiny_extractor, QUIET).products == 3


# --- 9. one-line errors instead of tracebacks ------------------------------------------------


def test_utf16_csv_is_read_and_latin1_is_one_line(tmp_path: Path) -> None:
    catalog = _catalog_with(tmp_path, [])
    text = catalog.read_text(encoding="utf-8").replace("Good 0", "Sofá 0")
    catalog.write_text(text, encoding="utf-16")  # with a BOM, as Excel writes it
    assert sorted(e.title for e in load_catalog(catalog).entries)[-1] == "Sofá 0"
    catalog.write_text(text, encoding="latin-1")
    with pytest.raises(ConfigError, match=r"catalog.csv is not UTF-8"):
        load_catalog(catalog)


def test_oversized_csv_field_is_one_line(tmp_path: Path) -> None:
    catalog = _catalog_with(tmp_path, [])
    with catalog.open("a", encoding="utf-8") as handle:
        handle.write(f'x,"{"a" * 140_000}",circles,img/ok0.jpg\n')
    with pytest.raises(ConfigError, match=r"catalog.csv:\d+: malformed CSV") as caught:
        load_catalog(catalog)
    assert len(str(caught.value)) < 300


def test_missing_image_column_names_the_columns_found(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title,picture\n1,Sofa,sofa.jpg\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no `image` column \(found: id, title, picture\)"):
        load_catalog(catalog)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, tiny_extractor: Extractor) -> Path:
    root = tmp_path_factory.mktemp("small")
    build_index(write_shapes_catalog(root / "catalog", 2), root / "index", tiny_extractor, QUIET)
    return (root / "index" / "current").resolve()


def _damage(release: Path, tmp_path: Path, name: str, damage) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(release, copy)
    damage(copy / name)
    return copy


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        (VECTORS, lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
        (VECTORS, lambda p: p.write_bytes(b"")),
        (PRODUCTS, lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)),
        (PRODUCTS, lambda p: p.write_bytes(os.urandom(8192))),
        (MANIFEST, lambda p: p.write_text("{not json", encoding="utf-8")),
        (MANIFEST, lambda p: p.write_text('{"format_version": 1}', encoding="utf-8")),
    ],
)
def test_damaged_index_files_are_one_typed_line(
    small_index: Path, tmp_path: Path, name: str, damage
) -> None:
    release = _damage(small_index, tmp_path, name, damage)
    with pytest.raises(SnapfindError) as caught:
        open_index(release)
    message = str(caught.value)
    assert "damaged" in message and name in message and "\n" not in message


# --- 10. --category naming no category; search reads bounded ---------------------------------


def test_search_cli_bounds_reads_and_names_the_categories(
    small_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = small_index.parents[1]
    fifo, zero, strip = tmp_path / "fifo.jpg", tmp_path / "zero.jpg", tmp_path / "strip.png"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    strip.write_bytes(png(Image.new("L", (20_000, 2))))
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(draw_item("circles", seed=3)))
    extractor = ["--index", str(index_dir)]  # the index names its own extractor
    code = main(["search", str(fifo), str(zero), str(strip), str(good), *extractor])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{good}:" in out and "1." in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "thin strip" in lines[2]
    assert all("not an image file" in line for line in lines[:2])
    assert main(["search", str(good), "--category", "sofas", *extractor]) == 2
    assert "no category 'sofas' in this index; its categories: circles, squares" in (
        capsys.readouterr().err
    )


def test_a_photo_too_small_to_show_anything_is_refused_before_the_network(service) -> None:
    """A 1×1 or 8×8 picture used to get an album at a confident-looking similarity."""
    from retrieval.limits import MIN_QUERY_SIDE

    for width, height in ((1, 1), (8, 8), (MIN_QUERY_SIDE - 1, 400)):
        with pytest.raises(ImageError) as refused:
            service.search_bytes(jpeg_bytes(Image.new("RGB", (width, height), "grey")))
        assert refused.value.user_message == (
            f"That image is too small to search ({width}×{height} pixels). "
            "Please send a larger photo."
        )
    small = jpeg_bytes(Image.new("RGB", (MIN_QUERY_SIDE, MIN_QUERY_SIDE), "grey"))
    assert service.search_bytes(small).hits  # the smallest photo that is searched
