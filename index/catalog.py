"""Catalog ingestion: a folder tree, a CSV or a JSONL manifest → catalog entries.

A folder tree is `ROOT/[source/]category/image.ext`; the same image (by content) in several
category folders is one product with several labels. A manifest has one row per product image
(`id, title, categories, image, url, price, ...`); rows sharing an id are one product.
"""

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from retrieval.errors import ConfigError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
LABEL_SEPARATORS = ("|", ";")
KNOWN_FIELDS = {"id", "title", "categories", "category", "image", "url", "price"}
MANIFEST_NAMES = ("catalog.csv", "catalog.jsonl")  # a folder holding one is read through it


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


@dataclass
class Catalog:
    """Readable entries, plus the images that could not be read and why."""

    entries: list[CatalogEntry]
    unreadable: list[tuple[str, str]]  # (image path, reason)


def content_hash(path: Path) -> str:
    """Hex SHA-256 of an image file: the identity of an image, whatever its name."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    """How the build reads a catalog, said in its first line."""
    if source.is_dir():
        return f"catalog {source}: a folder tree (ROOT/[source/]category/image)"
    kind = "CSV" if source.suffix.lower() == ".csv" else "JSONL"
    return f"catalog {source}: a {kind} manifest"


def load_catalog(path: Path) -> Catalog:
    """Read a catalog in any supported form."""
    path = Path(path)
    source = catalog_source(path)
    if source.is_dir():
        return _from_rows(_folder_rows(source), merge_by_hash=True)
    if not source.is_file():
        raise ConfigError(f"catalog not found: {path}")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        catalog = _from_rows(_csv_rows(source), merge_by_hash=False)
    elif suffix in {".jsonl", ".ndjson"}:
        catalog = _from_rows(_jsonl_rows(source), merge_by_hash=False)
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


def read_catalog(path: Path) -> list[CatalogEntry]:
    """The readable entries of a catalog."""
    return load_catalog(path).entries


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
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            yield _resolve_image(row, path.parent)


def _jsonl_rows(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: each line must be a JSON object")
            yield _resolve_image(row, path.parent)


def _resolve_image(row: dict[str, object], base: Path) -> dict[str, object]:
    image = str(row.get("image") or "").strip()
    return row | {"image": (base / image) if image else None}


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


def _from_rows(rows: Iterable[dict[str, object]], *, merge_by_hash: bool) -> Catalog:
    """Rows → entries, merging labels of rows that are the same product image."""
    merged: dict[tuple[str, str], CatalogEntry] = {}
    unreadable: list[tuple[str, str]] = []
    for row in rows:
        image = row.get("image")
        if not isinstance(image, Path):
            unreadable.append((str(row.get("id", "?")), "no image given"))
            continue
        try:
            digest = content_hash(image)
        except OSError as error:
            unreadable.append((str(image), error.strerror or type(error).__name__))
            continue
        labels = _labels(row.get("categories", row.get("category")))
        entry = CatalogEntry(
            id=_text(row.get("id")) or digest[:16],
            title=_text(row.get("title")) or image.stem,
            categories=labels,
            image=image.resolve(),
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
