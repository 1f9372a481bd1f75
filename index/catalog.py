"""Catalog ingestion: a folder tree, a CSV or a JSONL manifest → catalog entries.

A folder tree is `ROOT/[source/]category/image.ext`; the same image (by content) in several
category folders is one product with several labels. A manifest has one row per product image
(`id, title, categories, image, url, price, ...`); rows sharing an id are one product.

Images are read only inside the catalog's folder or under roots the operator names: a row
pointing elsewhere (`../`, an absolute path, a symlink out) is listed as unreadable, so a
catalog can never make the bot send `/etc/passwd` to a shopper.
"""

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from retrieval.bounded_read import read_image_file
from retrieval.errors import ConfigError, ImageError
from retrieval.limits import DEFAULT_LIMITS, MAX_MANIFEST_LINE

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
LABEL_SEPARATORS = ("|", ";")
KNOWN_FIELDS = {"id", "title", "categories", "category", "image", "url", "price"}
MANIFEST_NAMES = ("catalog.csv", "catalog.jsonl")  # a folder holding one is read through it
URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)  # an image column holding a link


@dataclass(frozen=True)
class CatalogEntry:
    """One image of one product, with the product's metadata."""

    id: str
    title: str
    categories: tuple[str, ...]
    image: Path
    content_hash: str
    url: str | None = None
    price: str | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def kind(self) -> str:
        """Its first category, the one that names what it is ("" for none)."""
        return self.categories[0] if self.categories else ""


@dataclass(frozen=True)
class CatalogAccess:
    """Where a catalog's images may be read from, and how much of each."""

    roots: tuple[Path, ...] = ()  # folders the operator allows besides the catalog's own
    max_bytes: int = DEFAULT_LIMITS.max_bytes


@dataclass
class Catalog:
    """Readable entries, plus the images that could not be read and why."""

    entries: list[CatalogEntry]
    unreadable: list[tuple[str, str]]  # (image path, reason)


def unique_pictures(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    """One entry per image content, first seen first: a picture shared by two products once."""
    return list({e.content_hash: e for e in reversed(entries)}.values())[::-1]


def catalog_source(path: Path) -> Path:
    """What a catalog path stands for: a folder holding `catalog.csv`/`.jsonl` is that manifest."""
    path = Path(path)
    if not path.is_dir():
        return path
    manifests = [path / name for name in MANIFEST_NAMES if (path / name).is_file()]
    if len(manifests) > 1:
        raise ConfigError(
            f"{path} holds both {' and '.join(m.name for m in manifests)}: "
            "point --catalog (SNAPFIND_CATALOG) at the one to use"
        )
    return manifests[0] if manifests else path


def describe_source(source: Path) -> str:
    """How the build reads a catalog, said in its first line; `ConfigError` if it is not there."""
    if not source.exists():
        raise ConfigError(f"catalog not found: {source}")
    if source.is_dir():
        return f"catalog {source}: a folder tree (ROOT/[source/]category/image)"
    _check_manifest(source)
    kind = "CSV" if source.suffix.lower() == ".csv" else "JSONL"
    return f"catalog {source}: a {kind} manifest"


def _check_manifest(source: Path) -> None:
    """Parse every row (no image is read): a manifest that is not UTF-8, lacks its `image`
    column or is malformed is refused before the model loads and before the index folder,
    its lock and its cache are made."""
    rows = {".csv": _csv_rows, ".jsonl": _jsonl_rows, ".ndjson": _jsonl_rows}
    parse = rows.get(source.suffix.lower())
    if parse is None:
        raise ConfigError(f"catalog must be a folder, a .csv or a .jsonl file, not {source.name}")
    if sum(1 for _ in parse(source)) == 0:
        raise ConfigError(f"catalog {source} lists no images: it has no rows")


def load_catalog(path: Path, access: CatalogAccess = CatalogAccess()) -> Catalog:
    """Read a catalog in any supported form."""
    path = Path(path)
    source = catalog_source(path)
    if source.is_dir():
        return _from_rows(_folder_rows(source), _Reader(source, access), merge_by_hash=True)
    if not source.is_file():
        raise ConfigError(f"catalog not found: {path}")
    suffix = source.suffix.lower()
    reader = _Reader(source.parent, access)
    if suffix == ".csv":
        catalog = _from_rows(_csv_rows(source), reader, merge_by_hash=False)
    elif suffix in {".jsonl", ".ndjson"}:
        catalog = _from_rows(_jsonl_rows(source), reader, merge_by_hash=False)
    else:
        raise ConfigError(f"catalog must be a folder, a .csv or a .jsonl file, not {path.name}")
    if source != path:
        _refuse_unlisted_images(path, source, catalog)
    return catalog


def _refuse_unlisted_images(folder: Path, manifest: Path, catalog: Catalog) -> None:
    """A folder with a manifest and images the manifest does not list is ambiguous: refuse."""
    listed = {entry.image.resolve() for entry in catalog.entries}
    listed |= {(folder / image).resolve() for image, _ in catalog.unreadable}
    loose = [image for image in _images_under(folder) if image.resolve() not in listed]
    if loose:
        raise ConfigError(
            f"{folder} holds {manifest.name} and {len(loose)} images it does not list (e.g. "
            f"{loose[0].relative_to(folder)}): to use the manifest, point --catalog at "
            f"{manifest} or list those images in it; to index the folder tree, move "
            f"{manifest.name} out of the folder"
        )


def _images_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_catalog(path: Path, access: CatalogAccess = CatalogAccess()) -> list[CatalogEntry]:
    """The readable entries of a catalog."""
    return load_catalog(path, access).entries


class _Reader:
    """Hashes catalog images found inside the allowed folders; says why others are refused."""

    def __init__(self, home: Path, access: CatalogAccess) -> None:
        self.home = home.resolve()
        self.roots = (self.home, *(Path(root).resolve() for root in access.roots))
        self.max_bytes = access.max_bytes

    def place(self, image: Path) -> Path:
        """The real path of `image` (symlinks followed); `ImageError` if outside every root."""
        real = image.resolve()
        if not any(real.is_relative_to(root) for root in self.roots):
            raise ImageError(
                f"outside the catalog folder {self.home} (allow its folder with --allow-root)",
                "",
            )
        return real

    def hash(self, image: Path) -> str:
        """Hex SHA-256 of an image file: the identity of an image, whatever its name.

        Raises `ImageError` for what is not a regular file of at most `max_bytes`.
        """
        return hashlib.sha256(read_image_file(image, self.max_bytes)).hexdigest()


def _folder_rows(root: Path) -> Iterator[dict[str, object]]:
    for image in _images_under(root):
        parts = image.relative_to(root).parts
        if len(parts) < 2:
            continue  # an image directly under ROOT has no category
        extra = {"source": parts[0]} if len(parts) > 2 else {}
        yield {
            "id": image.relative_to(root).with_suffix("").as_posix(),
            "title": image.stem.replace("_", " ").replace("-", " ").strip() or image.stem,
            "categories": parts[-2],
            "image": image,
            **extra,
        }


def _csv_rows(path: Path) -> Iterator[dict[str, object]]:
    """Rows of a UTF-8 (or BOM-marked UTF-16) CSV; any malformation is one `ConfigError`."""
    with path.open("rb") as raw:
        utf16 = raw.read(2) in (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode text"
    with path.open(newline="", encoding="utf-16" if utf16 else "utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            _require_image_column(path, reader.fieldnames)
            for row in reader:
                spare = row.pop(None, [])  # cells past the header's columns
                if any(str(cell).strip() for cell in spare):
                    raise ConfigError(
                        f"{path}:{reader.line_num}: {len(reader.fieldnames or ()) + len(spare)} "
                        f"cells for {len(reader.fieldnames or ())} columns; put a value that "
                        "holds a comma in double quotes"
                    )
                yield _resolve_image(row, path.parent)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except csv.Error as error:
            raise ConfigError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None


def _not_utf8(path: Path) -> ConfigError:
    return ConfigError(f"{path} is not UTF-8 text; save the catalog as UTF-8")


def _require_image_column(path: Path, found: Iterable[str] | None) -> None:
    names = [_printable(name[:40]) for name in (found or [])]
    if "image" not in names:
        listed = ", ".join(names[:20]) + (", …" if len(names) > 20 else "") or "none"
        raise ConfigError(
            f"{path} has no `image` column (found: {listed}); "
            "each row needs the path of its image, relative to the CSV"
        )


def _printable(text: str) -> str:
    """`text` fit for one terminal line: a binary file's header has NULs and escapes."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _jsonl_rows(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        try:
            for number, line in enumerate(_bounded_lines(handle), start=1):
                if len(line.rstrip("\n")) > MAX_MANIFEST_LINE:  # cut short: longer
                    raise ConfigError(
                        f"{path}:{number}: line longer than {MAX_MANIFEST_LINE} characters"
                    )
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ConfigError(f"{path}:{number}: not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"{path}:{number}: each line must be a JSON object")
                yield _resolve_image(row, path.parent)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _bounded_lines(handle: TextIO) -> Iterator[str]:
    """Lines of at most `MAX_MANIFEST_LINE` + 1 characters: a longer one is cut, not read whole."""
    while line := handle.readline(MAX_MANIFEST_LINE + 1):
        yield line


def _resolve_image(row: dict[str, object], base: Path) -> dict[str, object]:
    image = str(row.get("image") or "").strip()
    if URL.match(image):  # kept as text: refused by `_no_file`, never fetched
        return row | {"image": image}
    return row | {"image": (base / image) if image else None}


def _no_file(row: dict[str, object]) -> tuple[str, str]:
    """(what, why) for a row whose image is no local path: a URL, or nothing at all."""
    image = row.get("image")
    if isinstance(image, str):
        return image[:200], "a URL: images are read from local files only; download it first"
    return str(row.get("id", "?")), "no image given"


def _labels(value: object) -> tuple[str, ...]:
    """Categories from a list or a `|`/`;`-separated string, trimmed, order kept, no repeats."""
    if isinstance(value, list | tuple):
        items: Iterable[str] = (str(v) for v in value)
    else:
        text = str(value or "")
        for separator in LABEL_SEPARATORS[1:]:
            text = text.replace(separator, LABEL_SEPARATORS[0])
        items = text.split(LABEL_SEPARATORS[0])
    return tuple(dict.fromkeys(label.strip() for label in items if label.strip()))


def _text(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _from_rows(
    rows: Iterable[dict[str, object]], reader: _Reader, *, merge_by_hash: bool
) -> Catalog:
    """Rows → entries, merging labels of rows that are the same product image."""
    merged: dict[tuple[str, str], CatalogEntry] = {}
    unreadable: list[tuple[str, str]] = []
    for row in rows:
        image = row.get("image")
        if not isinstance(image, Path):
            unreadable.append(_no_file(row))
            continue
        try:
            image = reader.place(image)
            digest = reader.hash(image)
        except ImageError as error:
            unreadable.append((str(image), str(error)))
            continue
        labels = _labels(row.get("categories", row.get("category")))
        entry = CatalogEntry(
            id=_text(row.get("id")) or digest[:16],
            title=_text(row.get("title")) or image.stem,
            categories=labels,
            image=image,
            content_hash=digest,
            url=_text(row.get("url")),
            price=_text(row.get("price")),
            extra={k: v for k, v in row.items() if k not in KNOWN_FIELDS and v not in ("", None)},
        )
        key = ("", digest) if merge_by_hash else (entry.id, digest)
        if key in merged:
            first = merged[key]
            labels = tuple(dict.fromkeys(first.categories + entry.categories))
            merged[key] = replace(first, categories=labels)
        else:
            merged[key] = entry
    return Catalog(_share_product_labels(list(merged.values())), unreadable)


def _share_product_labels(entries: list[CatalogEntry]) -> list[CatalogEntry]:
    """Every image of a product carries all the product's labels."""
    labels: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        labels[entry.id] = tuple(dict.fromkeys(labels.get(entry.id, ()) + entry.categories))
    return [replace(entry, categories=labels[entry.id]) for entry in entries]
