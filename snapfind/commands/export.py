"""`snapfind export`: the Keras backbone → a runtime file that serves without TensorFlow."""

import argparse
import contextlib
import time

from retrieval.backbones import get_backbone
from retrieval.errors import IndexNotFoundError
from retrieval.extractor import Fingerprint
from retrieval.feature_map import region_side
from retrieval.loading import (
    load_extractor_to_build,
    load_keras_extractor,
    prefer_exported,
    settings_for_index,
)
from retrieval.runtime_choice import choose_format
from retrieval.runtime_export import export_runtime
from retrieval.runtime_file import (
    MODEL_FILES,
    RuntimeRecord,
    expected_fingerprint,
    find_runtime,
    regions_file,
    runtime_home,
)
from retrieval.settings import Settings
from snapfind.commands.options import add_extractor_options, path_argument, settings_from


def export_from_settings(
    settings: Settings, *, force: bool = False, model_format: str | None = None
) -> str:
    """Export the backbone that serves, unless a verified export exists; a one-line summary.

    That is the backbone of the index at `settings.index_dir` when there is one (the index
    decides), else the one the first build will use. The format is `model_format`, else the
    backbone's (`choose_format`); an export in another format is replaced. The check comes
    first and needs no TensorFlow, so running this before every start of the bot costs a
    hash of the model file when the export is already there.
    """
    started = time.perf_counter()
    with contextlib.suppress(IndexNotFoundError):
        settings = settings_for_index(settings, settings.index_dir)
    settings = prefer_exported(settings)
    fingerprint = expected_fingerprint(settings.backbone, settings.weights, settings.input_size)
    record = None if force else _usable(settings, fingerprint, model_format)
    verb = "already exported"
    if record is None:
        extractor = load_extractor_to_build(settings, load_keras_extractor)
        record = None if force else _usable(settings, extractor.fingerprint, model_format)
        if record is None:
            record, _ = export_runtime(extractor, settings.runtime_dir, model_format)
            verb = "exported"
    home = runtime_home(settings.runtime_dir, record.fingerprint)
    regions = record.regions  # complete: found with it or just exported
    return (
        f"{record.fingerprint.backbone} ({record.fingerprint.input_size} px, "
        f"{record.fingerprint.weights_id}) {verb} → {home}: {record.format}, "
        f"{record.size_bytes / 2**20:.1f} MiB, sha256 {record.sha256[:16]}, "
        f"probe cosine {record.probe_cosine:.6f}; feature map {regions.side} px "
        f"({_map_where(record)}), probe cosine {regions.probe_cosine:.6f}; "
        f"made {record.exported_at} "
        f"({time.perf_counter() - started:.1f} s)"
    )


def _map_where(record: RuntimeRecord) -> str:
    regions = record.regions
    if regions.file == record.model_file:
        return "the model's second output"
    return f"{regions.file}, {regions.size_bytes / 2**20:.1f} MiB"


def _usable(
    settings: Settings, fingerprint: Fingerprint, model_format: str | None
) -> RuntimeRecord | None:
    """The verified export of `fingerprint` if it is in the wanted format and has the region
    pass's map where and at the side this version puts it, else None: an export made before
    the region pass, at another region side, or before B7's map became its ONNX model's second
    output, is redone."""
    record = find_runtime(settings.runtime_dir, fingerprint)
    if record is None:
        return None
    size = fingerprint.input_size
    wanted = model_format or choose_format(get_backbone(fingerprint.backbone), size)
    regions = record.regions
    current = (
        regions is not None
        and regions.side == region_side(size)
        and regions.file == regions_file(wanted, size)
    )
    return record if record.format == wanted and current else None


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, runtime_dir=args.runtime_dir)
    model_format = None if args.format == "auto" else args.format
    print(export_from_settings(settings, force=args.force, model_format=model_format))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the backbone to a runtime model that serves without TensorFlow",
        description="Build the Keras backbone, export it (with L2 normalisation) to a LiteRT "
        "or ONNX file, and beside it the same network without pooling at the region side (objects "
        "in room photos, LiteRT); check both against Keras on probe images (cosine >= 0.99999) "
        "and store them with their sha256 under SNAPFIND_RUNTIME_DIR. `search`, `health`, "
        "`bot` and `index build` then use it. Does nothing if a verified export exists, "
        "unless --force.",
    )
    parser.add_argument(
        "--format",
        choices=("auto", *MODEL_FILES),
        default="auto",
        help="runtime format; auto: LiteRT for small networks, ONNX Runtime for large ones "
        "(docs/performance.md)",
    )
    parser.add_argument(
        "--runtime-dir", type=path_argument, help="where runtime models live (SNAPFIND_RUNTIME_DIR)"
    )
    parser.add_argument("--force", action="store_true", help="export again even if one exists")
    add_extractor_options(parser)
    parser.set_defaults(run=run)
