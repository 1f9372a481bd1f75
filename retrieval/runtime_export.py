"""Keras model → LiteRT or ONNX file, checked against Keras on probe images before it serves.

Keras stays the source of truth. The format is the backbone's (retrieval/runtime_choice.py)
unless the caller names one. LiteRT: Keras's own `model.export(format="litert")` (TF's
`TFLiteConverter.from_concrete_functions` wrote files without the weights, NaN outputs, for
these Keras 3 models). ONNX: retrieval/onnx_export.py. The exported graph is backbone + L2
normalisation; resizing and the backbone's preprocessing stay in numpy (`Embedder.prepare`),
the one code every path runs.
Beside it goes the feature-map model of the region pass (`retrieval.feature_map`), probed the
same way, so objects in room photos are found without TensorFlow too: a LiteRT file of its own,
or, for ONNX where the region side is the query side, a second output of the same graph
(`retrieval.runtime_file.regions_file`).
"""

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from threading import Lock

import numpy as np

from retrieval.errors import RuntimeModelError
from retrieval.extractor import Extractor, file_sha256
from retrieval.feature_map import (
    KerasFeatureMap,
    LiteRTFeatureMap,
    feature_map_model,
    map_before_pooling,
    region_side,
)
from retrieval.onnx_export import write_onnx
from retrieval.onnx_runner import OnnxFeatureMap, OnnxRunner
from retrieval.regions import FeatureMap
from retrieval.resize import to_square
from retrieval.runtime_choice import choose_format
from retrieval.runtime_extractor import Runner, open_runner
from retrieval.runtime_file import (
    MODEL_FILES,
    RECORD,
    REGIONS_FILE,
    RegionModel,
    RuntimeRecord,
    regions_file,
    runtime_home,
)

log = logging.getLogger(__name__)

STAGING_PREFIX, RETIRED_PREFIX = ".export-", ".retired-"  # in the runtime folder, while exporting
MIN_PROBE_COSINE = 0.99999  # runtime and Keras vectors must agree at least this well
PROBE_SEED = 20261201


def probe_images(count: int = 6) -> list[np.ndarray]:
    """Deterministic (H, W, 3) uint8 images with noise, edges, flat areas and odd aspect ratios."""
    rng = np.random.default_rng(PROBE_SEED)
    ramp = np.tile(np.linspace(0, 255, 320), (200, 1))  # (200, 320)
    gradient = np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)], axis=-1)
    blocks = np.kron(rng.integers(0, 256, (12, 8, 3)), np.ones((25, 25, 1)))  # (300, 200, 3)
    images = [
        rng.integers(0, 256, (240, 320, 3)),  # noise, landscape
        gradient,  # smooth colour ramps
        blocks,  # hard edges, portrait
        np.full((180, 180, 3), 255),  # a blank catalog background
    ]
    while len(images) < count:
        images.append(rng.integers(0, 256, (150 + 37 * len(images), 210, 3)))
    return [image.astype(np.uint8) for image in images[:count]]


def probe_cosine(extractor: Extractor, runner: Runner) -> float:
    """The worst per-image cosine between runtime and Keras vectors (NaN if any is NaN)."""
    batch = extractor.prepare(probe_images())  # (N, S, S, 3)
    keras_vectors = extractor.embed_prepared(batch)
    runtime_vectors = np.concatenate([runner.run(batch[i : i + 1]) for i in range(len(batch))])
    runtime_vectors = np.concatenate([runtime_vectors, runner.run(batch)])  # batched path too
    keras_vectors = np.concatenate([keras_vectors, keras_vectors])
    norms = np.linalg.norm(keras_vectors, axis=1) * np.linalg.norm(runtime_vectors, axis=1)
    return float(np.min(np.sum(keras_vectors * runtime_vectors, axis=1) / norms))


def probe_map_cosine(reference: KerasFeatureMap, exported: "FeatureMap", prepare) -> float:
    """The worst per-image cosine between the runtime's and Keras's flattened feature maps."""
    worst = 1.0
    for image in probe_images():
        batch = prepare(image)  # (1, S, S, 3)
        keras_map, runtime_map = reference(batch).ravel(), exported(batch).ravel()
        norms = np.linalg.norm(keras_map) * np.linalg.norm(runtime_map)
        worst = min(worst, float(keras_map @ runtime_map / norms))
    return worst


def serving_model(extractor: Extractor, with_map: bool = False) -> "object":
    """The Keras model with L2 normalisation on top: (N, S, S, 3) → (N, D) unit vectors, and
    with `with_map` also the (N, g, g, D) feature map its pooling reduces (second output)."""
    import keras

    size = extractor.input_size
    inputs = keras.Input((size, size, 3), name="images")
    unit = keras.layers.UnitNormalization(axis=-1)
    network = extractor.model
    if with_map:
        both = keras.Model(network.input, [network.output, map_before_pooling(network)])
        pooled, fmap = both(inputs)
        outputs = [unit(pooled), fmap]  # (N, D), (N, g, g, D)
    else:
        outputs = unit(network(inputs))  # (N, D)
    return keras.Model(inputs, outputs, name=f"{extractor.model_name}_unit")


def write_litert(serving: "object", input_size: int, path: Path) -> None:
    """Keras's own LiteRT export, with a dynamic batch."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32, name="images")
    serving.export(str(path), format="litert", verbose=False, input_signature=[spec])


def _export_regions(extractor: Extractor, path: Path) -> RegionModel:
    """The feature-map model at the region side, exported to LiteRT and probed against Keras."""
    import tensorflow as tf

    side = region_side(extractor.input_size)
    spec = tf.TensorSpec([1, side, side, 3], tf.float32, name="images")
    model = feature_map_model(extractor, side)
    model.export(str(path), format="litert", verbose=False, input_signature=[spec])
    return _probed_regions(extractor, LiteRTFeatureMap(path, side, threads=1), path)


def _probed_regions(extractor: Extractor, exported: FeatureMap, path: Path) -> RegionModel:
    """The record of the map that `exported` computes from the file `path`, once its maps
    agree with Keras's on the probe images."""
    side = exported.side

    def prepare(image: np.ndarray) -> np.ndarray:
        return extractor.backbone.preprocess(to_square(image, side)[None].astype(np.float32))

    cosine = probe_map_cosine(KerasFeatureMap(extractor, side), exported, prepare)
    _refuse_unless_close(extractor, cosine, "feature-map model")
    return RegionModel(side, file_sha256(path), path.stat().st_size, round(cosine, 7), path.name)


def _refuse_unless_close(extractor: Extractor, cosine: float, what: str) -> None:
    if not cosine >= MIN_PROBE_COSINE:  # also refuses NaN
        raise RuntimeModelError(
            f"the exported {extractor.fingerprint.backbone} {what} disagrees with Keras on probe "
            f"images (worst cosine {cosine:.6f} < {MIN_PROBE_COSINE}); nothing was written"
        )


WRITERS = {"litert": write_litert, "onnx": write_onnx}


def _exporter(model_format: str) -> str:
    import keras
    import tensorflow as tf

    made = f"keras {keras.__version__}, tensorflow {tf.__version__}"
    if model_format == "onnx":
        import tf2onnx

        made += f", tf2onnx {tf2onnx.__version__}"
    return made


def export_runtime(
    extractor: Extractor, runtime_dir: Path, model_format: str | None = None
) -> tuple[RuntimeRecord, Path]:
    """Export `extractor` into `runtime_dir`, replacing any earlier export; (record, folder).

    `model_format` is a key of `MODEL_FILES`; None takes the backbone's (`choose_format`).

    The file is written and probed in a staging folder and moved into place only when it
    agrees with Keras, so a failed export leaves the previous one untouched. One export at a
    time writes into `runtime_dir` (`_exclusive`).
    """
    runtime_dir = Path(runtime_dir)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(runtime_dir):
        return _export_into(extractor, runtime_dir, model_format)


def _export_into(
    extractor: Extractor, runtime_dir: Path, model_format: str | None
) -> tuple[RuntimeRecord, Path]:
    """`export_runtime` under the folder's lock."""
    home = runtime_home(runtime_dir, extractor.fingerprint)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=runtime_dir))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a separate serving user
    try:
        started = time.perf_counter()
        model_format = model_format or choose_format(extractor.backbone, extractor.input_size)
        model = staging / MODEL_FILES[model_format]
        shared = regions_file(model_format, extractor.input_size) == model.name  # map inside
        WRITERS[model_format](serving_model(extractor, shared), extractor.input_size, model)
        runner = open_runner(model_format, model, threads=1)
        cosine = probe_cosine(extractor, runner)
        _refuse_unless_close(extractor, cosine, "model")
        if shared and isinstance(runner, OnnxRunner) and runner.has_map:
            side = extractor.input_size
            regions = _probed_regions(extractor, OnnxFeatureMap(runner, side, Lock()), model)
        else:
            regions = _export_regions(extractor, staging / REGIONS_FILE)
        record = RuntimeRecord(
            fingerprint=extractor.fingerprint,
            model_name=extractor.model_name,
            param_count=extractor.param_count,
            format=model_format,
            sha256=file_sha256(model),
            size_bytes=model.stat().st_size,
            probe_cosine=round(cosine, 7),
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
            exporter=_exporter(model_format),
            regions=regions,
        )
        (staging / RECORD).write_text(record.to_json(), encoding="utf-8")
        _move_into_place(staging, home)
        log.info(
            "exported %s (%s) to %s in %.1f s",
            extractor.model_name,
            model_format,
            home,
            time.perf_counter() - started,
        )
        return record, home
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(runtime_dir: Path) -> Iterator[None]:
    """Hold `runtime_dir`'s export lock (a `flock` on the folder itself, released when the
    process dies), then remove what an export killed mid-way left there.

    A SIGKILLed export (the OOM killer: B7 peaks at 12 GB) left its staging folder, as large
    as the model, at every attempt; under the lock none of them can be a live export's.
    """
    folder = os.open(runtime_dir, os.O_RDONLY)
    try:
        if _lock(folder, runtime_dir):
            for leftover in runtime_dir.iterdir():
                if leftover.name.startswith((STAGING_PREFIX, RETIRED_PREFIX)) and leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        os.close(folder)  # releases the lock


def _lock(folder: int, runtime_dir: Path) -> bool:
    """Lock the open folder `folder`, waiting for another export; False where the file system
    has no such locks (some network mounts), which leaves exports unguarded, as before."""
    try:
        fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.warning("another export is writing to %s: waiting for it", runtime_dir)
        fcntl.flock(folder, fcntl.LOCK_EX)
    except OSError as error:
        log.warning("cannot lock %s (%s): not guarded against a second export", runtime_dir, error)
        return False
    return True


def _move_into_place(staging: Path, home: Path) -> None:
    """Replace `home` by `staging` with renames; a reader sees the old folder or the new one."""
    retired = None
    if home.exists():
        retired = home.with_name(f"{RETIRED_PREFIX}{home.name}-{time.time_ns()}")
        home.rename(retired)
    staging.rename(home)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
