"""The exported model served by the standalone LiteRT interpreter: no TensorFlow in the process.

Same interface as the Keras `Extractor` (both are `Embedder`s): the same resize and
preprocessing in numpy, then the exported graph (backbone + L2 normalisation).
"""

import importlib.util
import logging
import os
import threading
from pathlib import Path

import numpy as np

from retrieval.backbones import get_backbone
from retrieval.embedder import Embedder
from retrieval.errors import RuntimeModelError
from retrieval.runtime_file import (
    MODEL_FILE,
    RuntimeRecord,
    expected_fingerprint,
    find_runtime,
    runtime_home,
)
from retrieval.settings import Settings

log = logging.getLogger(__name__)


class LiteRTRunner:
    """One LiteRT interpreter (XNNPACK kernels) over a model file; not thread-safe on its own."""

    def __init__(self, model: Path, threads: int = 0) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.threads = threads or os.cpu_count() or 1
        self._interpreter = Interpreter(model_path=str(model), num_threads=self.threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape: tuple[int, ...] = ()

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


class RuntimeExtractor(Embedder):
    """An exported backbone; same fingerprint as the Keras extractor it was exported from."""

    def __init__(self, record: RuntimeRecord, model: Path, threads: int = 0) -> None:
        self.record = record
        self.backbone = get_backbone(record.fingerprint.backbone)
        self.fingerprint = record.fingerprint
        self.model_name = record.model_name
        self.param_count = record.param_count
        self.runtime_id = f"{record.format}:sha256:{record.sha256[:16]}"
        self._runner = LiteRTRunner(model, threads)
        self._lock = threading.Lock()

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
        log.warning(
            "no exported runtime model for %s in %s: running Keras and TensorFlow; "
            "`snapfind export` makes queries faster and the process lighter",
            fingerprint.backbone,
            settings.runtime_dir,
        )
        return None
    home = runtime_home(settings.runtime_dir, fingerprint)
    return RuntimeExtractor(record, home / MODEL_FILE, settings.threads)
