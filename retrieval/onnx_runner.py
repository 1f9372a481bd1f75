"""The exported model run by ONNX Runtime: no TensorFlow in the process.

Chosen for the large backbones (retrieval/runtime_choice.py): on EfficientNetB7 it spends a
quarter less CPU per image than Keras or LiteRT (docs/performance.md).
"""

import os
from pathlib import Path

import numpy as np


class OnnxRunner:
    """One ONNX Runtime session over a model file; not thread-safe on its own (callers lock).

    Graph optimisation at its highest level (constant folding, fusions, the NCHWc layout
    transforms for AVX2). Idle threads do not spin: on cores shared with decoding and the
    bot's I/O, spinning threads cost CPU that the measured wall time did not repay.
    """

    def __init__(self, model: Path, threads: int = 0, spinning: bool = False) -> None:
        import onnxruntime as ort

        self.threads = threads or os.cpu_count() or 1
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
        self._session = ort.InferenceSession(str(model), options, ["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) float32 → (N, D) float32."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self._session.run(None, {self._input: batch})[0]
