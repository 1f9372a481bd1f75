"""An exported runtime model on disk: where it lives, what made it, and its hash.

`RUNTIME_DIR/<fingerprint key>/model.tflite` (LiteRT) or `model.onnx` (ONNX Runtime) beside
`runtime.json`, which names the format, and the region pass's feature map (the same network
without its pooling at the region side, `retrieval.feature_map`): `regions.tflite` (LiteRT), or,
for ONNX where the region side is the query side (EfficientNetB7), the model's own second
output — one set of weights in memory, and one forward for a room photo. The key is
the extractor's fingerprint (backbone, weights, size, dim), so indexes built by Keras and by the
runtime are interchangeable and a serving process finds its model from its settings alone —
without TensorFlow, which only the export needs.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.backbones import get_backbone
from retrieval.errors import RuntimeModelError
from retrieval.extractor import Fingerprint, file_sha256, resolve_weights
from retrieval.feature_map import region_side
from retrieval.manifest import mistyped, read_json

# format → its model file; which format a backbone gets: retrieval/runtime_choice.py
MODEL_FILES = {"litert": "model.tflite", "onnx": "model.onnx"}
REGIONS_FILE = "regions.tflite"  # the region pass's own model (LiteRT), where it has one
RECORD = "runtime.json"


@dataclass(frozen=True)
class RegionModel:
    """The exported feature-map model: its file, input side and identity."""

    side: int  # square input side; the map is side / 32 cells a side (rounded up)
    sha256: str
    size_bytes: int
    probe_cosine: float  # the worst cosine between its maps and Keras's at export
    file: str = REGIONS_FILE  # or the query model's file: the map is its second output


@dataclass(frozen=True)
class RuntimeRecord:
    """runtime.json: the identity of an exported model, checked before it serves."""

    fingerprint: Fingerprint
    model_name: str  # the Keras model it was exported from
    param_count: int
    format: str
    sha256: str  # of the model file
    size_bytes: int
    probe_cosine: float  # the worst cosine between runtime and Keras vectors at export
    exported_at: str  # ISO 8601, UTC
    exporter: str  # e.g. "keras 3.15.1, tensorflow 2.21.0"
    regions: RegionModel | None = None  # None: exported before the region pass existed

    @property
    def model_file(self) -> str:
        return MODEL_FILES[self.format]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> "RuntimeRecord":
        """The record at `path`; `RuntimeModelError` if it is not one `snapfind export` wrote
        (bounded in size, every field of its type)."""
        try:
            raw = read_json(path)
            raw["fingerprint"] = Fingerprint(**raw["fingerprint"])
            if raw.get("regions") is not None:
                raw["regions"] = RegionModel(**raw["regions"])
            record = cls(**raw)
        except (ValueError, TypeError, KeyError) as error:
            raise _unreadable(path, str(error)) from None
        parts = [record, record.fingerprint, *([record.regions] if record.regions else [])]
        wrong = [name for part in parts for name in mistyped(part)]
        if wrong:
            raise _unreadable(path, f"wrong type of {', '.join(wrong)}")
        return record


def _unreadable(path: Path, why: str) -> RuntimeModelError:
    return RuntimeModelError(
        f"unreadable runtime record {path} ({why}); re-export: snapfind export --force"
    )


def regions_file(model_format: str, input_size: int) -> str:
    """Where an export in `model_format` at `input_size` keeps its feature map: the ONNX query
    model's second output when the region side is the query side, else `REGIONS_FILE`.

    ONNX only: LiteRT's Keras export of the two-output model is not measured; Lite0's region
    side (384) is not its query side (224) anyway.
    """
    shared = model_format == "onnx" and region_side(input_size) == input_size
    return MODEL_FILES[model_format] if shared else REGIONS_FILE


def runtime_home(runtime_dir: Path, fingerprint: Fingerprint) -> Path:
    """The folder that holds the runtime model of `fingerprint`."""
    return Path(runtime_dir) / fingerprint.key()


def expected_fingerprint(backbone: str, weights: str, input_size: int | None) -> Fingerprint:
    """The fingerprint the Keras extractor would have, computed without building it."""
    spec = get_backbone(backbone)
    _, weights_id = resolve_weights(spec, weights)
    return Fingerprint(spec.name, weights_id, input_size or spec.input_size, spec.dim)


def find_runtime(runtime_dir: Path, fingerprint: Fingerprint) -> RuntimeRecord | None:
    """The verified record of `fingerprint`'s exported model, or None if none was exported.

    A record whose file is missing or whose hash differs raises: serving a damaged model, or
    silently falling back to a ten times heavier one, would both hide the fault.
    """
    home = runtime_home(runtime_dir, fingerprint)
    if not (home / RECORD).is_file():
        return None
    record = RuntimeRecord.read(home / RECORD)
    if record.fingerprint != fingerprint or record.format not in MODEL_FILES:
        raise RuntimeModelError(f"runtime record {home / RECORD} describes another model")
    if record.regions is not None and record.regions.file not in (REGIONS_FILE, record.model_file):
        raise RuntimeModelError(f"runtime record {home / RECORD} names an unknown map file")
    checks = {home / record.model_file: record.sha256}
    if record.regions is not None and record.regions.file != record.model_file:
        checks[home / record.regions.file] = record.regions.sha256
    for path, sha256 in checks.items():
        if not path.is_file() or file_sha256(path) != sha256:
            raise RuntimeModelError(
                f"runtime model {path} is missing or does not match its sha256 in {RECORD}; "
                "re-export it: snapfind export --force"
            )
    return record
