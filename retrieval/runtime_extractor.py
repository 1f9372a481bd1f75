"""The exported model served by LiteRT or ONNX Runtime: no TensorFlow in the process.

Same interface as the Keras `Extractor` (both are `Embedder`s): the same resize and
preprocessing in numpy, then the exported graph (backbone + L2 normalisation), run by the
runtime its `runtime.json` names.
"""

import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from retrieval.backbones import get_backbone
from retrieval.embedder import Embedder
from retrieval.errors import RuntimeModelError
from retrieval.onnx_runner import OnnxFeatureMap, OnnxRunner
from retrieval.runtime_file import (
    RECORD,
    RuntimeRecord,
    expected_fingerprint,
    find_runtime,
    runtime_home,
)
from retrieval.settings import Settings

if TYPE_CHECKING:
    from retrieval.regions import FeatureMap


class Runner(Protocol):
    """Runs an exported model: (N, S, S, 3) float32 → (N, D) float32 unit vectors."""

    @property
    def io_shape(self) -> tuple[int, int]: ...

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class LiteRTRunner:
    """One LiteRT interpreter (XNNPACK kernels) over a model file; not thread-safe on its own."""

    def __init__(self, model: Path, threads: int = 0) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.threads = threads or os.cpu_count() or 1
        self._interpreter = Interpreter(model_path=str(model), num_threads=self.threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape: tuple[int, ...] = ()

    @property
    def io_shape(self) -> tuple[int, int]:
        """(square input side, feature length) the file was exported for."""
        sides = self._interpreter.get_input_details()[0]["shape"]  # (N, S, S, 3)
        return int(sides[1]), int(self._interpreter.get_output_details()[0]["shape"][-1])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) float32 → (N, D) float32; re-plans memory only when N changes."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, batch.shape, strict=True)
            self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()  # the buffer is reused


RUNNERS: dict[str, type[LiteRTRunner] | type[OnnxRunner]] = {
    "litert": LiteRTRunner,
    "onnx": OnnxRunner,
}


def open_runner(model_format: str, model: Path, threads: int = 0) -> Runner:
    """The runner of an exported model in `model_format` (a key of `MODEL_FILES`)."""
    return RUNNERS[model_format](model, threads)


class RuntimeExtractor(Embedder):
    """An exported backbone; same fingerprint as the Keras extractor it was exported from."""

    def __init__(
        self, record: RuntimeRecord, runner: Runner, home: Path | None = None, threads: int = 0
    ) -> None:
        """`home`: the export's folder, where the region pass's model lives (None: no region
        pass, as in benchmarks that open a model file alone); `threads` for that pass."""
        self.record = record
        self.backbone = get_backbone(record.fingerprint.backbone)
        self.fingerprint = record.fingerprint
        self.model_name = record.model_name
        self.param_count = record.param_count
        self.runtime_id = f"{record.format}:sha256:{record.sha256[:16]}"
        self._runner = runner
        self._home, self._threads = home, threads
        self._lock = threading.Lock()

    def feature_map(self) -> "FeatureMap":
        """The exported feature map, for the region pass: the query model's own map output
        (same session, same weights), or an interpreter of its own LiteRT file."""
        from retrieval.feature_map import LiteRTFeatureMap

        regions = self.record.regions
        if regions is None or self._home is None:
            raise RuntimeModelError(
                f"the runtime model in {self._home} was exported without its feature-map model "
                "(needed to find objects in room photos); export again: snapfind export"
            )
        if regions.file == self.record.model_file and isinstance(self._runner, OnnxRunner):
            return OnnxFeatureMap(self._runner, regions.side, self._lock)
        return LiteRTFeatureMap(self._home / regions.file, regions.side, self._threads)

    def embed_backbone(self, batch: np.ndarray) -> np.ndarray:
        """Run the exported network on a prepared (N, S, S, 3) batch."""
        with self._lock:
            return self._runner.run(batch)  # (N, D)


def load_runtime_extractor(settings: Settings) -> RuntimeExtractor | None:
    """The exported extractor for `settings`, or None when it was never exported."""
    fingerprint = expected_fingerprint(settings.backbone, settings.weights, settings.input_size)
    record = find_runtime(settings.runtime_dir, fingerprint)
    if record is None:
        if importlib.util.find_spec("tensorflow") is None:  # a serving-only install or image
            raise RuntimeModelError(
                f"no exported model for {fingerprint.backbone} ({fingerprint.input_size} px, "
                f"weights {settings.weights}) in {settings.runtime_dir}, and TensorFlow is not "
                "installed to run Keras: export it where TensorFlow is (snapfind export) or "
                "set SNAPFIND_BACKBONE/SNAPFIND_INPUT_SIZE to the exported model's"
            )
        return None
    home = runtime_home(settings.runtime_dir, fingerprint)
    runner = open_checked(record, home / record.model_file, settings.threads)
    return RuntimeExtractor(record, runner, home, settings.threads)


def open_checked(record: RuntimeRecord, model: Path, threads: int = 0) -> Runner:
    """The runner of `model`, refused in one line unless the file takes the input side and
    gives the feature length `record` (checked against the settings) says.

    The hash only proves the file is the one `runtime.json` names: a folder copied under
    another input size's key with its record edited to match passed it, and then LiteRT
    raised a traceback at the first photo.
    """
    runner = open_runner(record.format, model, threads)
    wanted = (record.fingerprint.input_size, record.fingerprint.dim)
    if runner.io_shape != wanted:
        side, dim = runner.io_shape
        raise RuntimeModelError(
            f"runtime model {model} takes {side} px images and gives {dim} features, but "
            f"{model.parent / RECORD} and the settings say {wanted[0]} px and {wanted[1]}: "
            "it was exported for another model; re-export it: snapfind export --force"
        )
    return runner
