"""manifest.json: what made an index, read before its vectors are trusted."""

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from retrieval.errors import IndexDamagedError, IndexMismatchError
from retrieval.extractor import Fingerprint

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
PRODUCTS = "products.sqlite"
MAX_JSON_BYTES = 1 << 20  # manifest.json and runtime.json: a few KB as snapfind writes them


def region_hubness_file(side: int) -> str:
    """The optional file `index build --objects` writes: named for the region side it was
    measured at, so an index built before the side changed is not read at the new one."""
    return f"region_hubness_{side}.npy"


def room_probe_file(side: int) -> str:
    """The other file `index build --objects` writes, named for its region side alike: the room
    probe over the backbone's own view of a photo (`Regions.scene`)."""
    return f"scene_probe_{side}.npy"


def whole_probe_file(side: int) -> str:
    """The room probe an index built before 2026-12-02 holds, learnt on the whole-photo vector:
    the same space as `room_probe_file`'s where the index has no tuned head, another with one."""
    return f"room_probe_{side}.npy"


def damaged(path: Path, why: str) -> IndexDamagedError:
    """The one-line error for an index file that cannot be read as what it should be."""
    return IndexDamagedError(
        f"index file {path} is damaged ({why}); rebuild the index: "
        "snapfind index build --catalog PATH --out INDEX_DIR --full"
    )


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> object:
    """The JSON value of a small file snapfind wrote; `ValueError` saying why it is not one.

    Bounded: a file grown huge (or nested deep) by a mistake is refused before it fills memory
    or the stack.
    """
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)  # one byte more tells a file over the limit
    if len(data) > max_bytes:
        raise ValueError(f"over {max_bytes} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


_JSON_TYPES = {str: (str,), int: (int,), float: (int, float)}  # a bool is no count


def mistyped(record: object) -> list[str]:
    """The str, int and float fields of a dataclass read from JSON that hold another type: a
    hand-edited "64" is refused on reading, not met as a traceback in a search."""
    return [
        f.name
        for f in fields(record)
        if f.type in _JSON_TYPES and type(getattr(record, f.name)) not in _JSON_TYPES[f.type]
    ]


_EXTRA_SCALARS = (int, str, bool, type(None))


def _mistyped_extra(extra: object) -> list[str]:
    """The entries of `Manifest.extra` that are not one JSON scalar: a string, a finite number,
    true, false or null (a NaN threshold or a list would be met later as a wrong answer)."""
    if not isinstance(extra, dict):
        return ["extra"]
    return [
        f"extra.{key}"
        for key, value in extra.items()
        if not (math.isfinite(value) if type(value) is float else type(value) in _EXTRA_SCALARS)
    ]


@dataclass(frozen=True)
class Manifest:
    """The identity and shape of one published index."""

    fingerprint: Fingerprint
    model_name: str  # the network that actually ran, read from the Keras model
    index_key: str  # FAISS factory string, e.g. "Flat" or "IVF1024,Flat"
    products: int
    vectors: int
    built_at: str  # ISO 8601, UTC
    catalog: str
    nprobe: int = 0  # IVF probes, set once at load; 0 for exact indexes
    unreadable: int = 0  # catalog images skipped because they could not be decoded
    format_version: int = FORMAT_VERSION
    extra: dict[str, float | int | str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        """The manifest at `path`; `IndexDamagedError` if it is not one this snapfind wrote."""
        try:
            raw = read_json(path)
        except ValueError as error:  # bad JSON or UTF-8, too large
            raise damaged(path, f"not readable as JSON: {error}") from None
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index at {path.parent} has format version {version}, this snapfind reads "
                f"{FORMAT_VERSION}; rebuild it with `snapfind index build --full`"
            )
        try:
            raw["fingerprint"] = Fingerprint(**raw["fingerprint"])
            manifest = cls(**raw)
        except (KeyError, TypeError) as error:
            raise damaged(path, f"missing or unknown field {error}") from None
        wrong = [
            *mistyped(manifest),
            *(f"fingerprint.{name}" for name in mistyped(manifest.fingerprint)),
            *_mistyped_extra(manifest.extra),
        ]
        if wrong:
            raise damaged(path, f"wrong type of {', '.join(wrong)}")
        return manifest

    def check_compatible(self, fingerprint: Fingerprint, where: Path) -> None:
        """Raise `IndexMismatchError` naming every difference, and how to rebuild."""
        built, running = self.fingerprint, fingerprint
        differences = [
            f"{name} {getattr(built, name)!r} (index) vs {getattr(running, name)!r} (extractor)"
            for name in ("backbone", "weights_id", "input_size", "dim", "head")
            if getattr(built, name) != getattr(running, name)
        ]
        if differences:
            raise IndexMismatchError(
                f"index at {where} was made by another extractor: {'; '.join(differences)}. "
                f"Rebuild it: snapfind index build --catalog {self.catalog} --out {where} "
                f"--backbone {running.backbone} --weights <the weights you run> --full"
            )
