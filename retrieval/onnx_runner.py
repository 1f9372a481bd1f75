"""The exported model run by ONNX Runtime: no TensorFlow in the process.

Chosen for the large backbones (retrieval/runtime_choice.py): on EfficientNetB7 it spends a
quarter less CPU per image than Keras or LiteRT (docs/performance.md).

Memory (measured by benchmarks/onnx_memory.py on B7, docs/performance.md): the graph
optimisations leave ~365 MiB of freed copies of the weights in the C heap, which `malloc_trim`
hands back; ONNX Runtime's memory pattern plans a second block for the activations beside the
arena's (~150 MiB more) at no measured speed gain, so it is off.

A model exported with the region pass's feature map as a second output (`runtime.json`'s
regions file is the model itself: the region side is the query side) serves both passes from
one set of weights, and the map of a room photo comes from the query's own forward.
"""

import ctypes
import os
import threading
from pathlib import Path

import numpy as np


class OnnxRunner:
    """One ONNX Runtime session over a model file: (N, S, S, 3) → (N, D) unit vectors, and, when
    the file has a second output, (N, g, g, D) feature maps. Callers lock around `run`.

    Graph optimisation at its highest level (constant folding, fusions, the NCHWc layout
    transforms for AVX2). Idle threads do not spin: on cores shared with decoding and the
    bot's I/O, spinning threads cost CPU that the measured wall time did not repay.
    """

    def __init__(self, model: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        self.threads = threads or os.cpu_count() or 1
        options = session_options(self.threads)
        self._session = ort.InferenceSession(str(model), options, ["CPUExecutionProvider"])
        release_freed_memory()
        self._input = self._session.get_inputs()[0].name
        by_rank = sorted(self._session.get_outputs(), key=lambda output: len(output.shape))
        self._outputs = [output.name for output in by_rank]  # (N, D)[, (N, g, g, D)]
        # the last single image's (input, map): the region pass asks for the map of the very
        # input the query just ran, and gets it without a second forward
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self._last_lock = threading.Lock()

    @property
    def io_shape(self) -> tuple[int, int]:
        """(square input side, feature length) the file was exported for; the side of a
        model without a fixed one is 0."""
        side = self._session.get_inputs()[0].shape[1]  # (N, S, S, 3); N is symbolic
        dim = next(o for o in self._session.get_outputs() if o.name == self._outputs[0]).shape[-1]
        return (side if isinstance(side, int) else 0), (dim if isinstance(dim, int) else 0)

    @property
    def has_map(self) -> bool:
        """Whether the model also outputs the feature map (its second output)."""
        return len(self._outputs) > 1

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) float32 → (N, D) float32."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if not self.has_map or len(batch) != 1:
            return self._session.run(self._outputs[:1], {self._input: batch})[0]
        return self._run_both(batch)[0]

    def feature_map(self, prepared: np.ndarray) -> np.ndarray:
        """(1, S, S, 3) prepared input → (g, g, D) float32 map; no forward when it is the input
        the last single-image `run` saw."""
        prepared = np.ascontiguousarray(prepared, dtype=np.float32)
        with self._last_lock:
            last = self._last
        if last is not None and np.array_equal(last[0], prepared):
            return last[1]
        return self._run_both(prepared)[1][0]

    def _run_both(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vector, fmap = self._session.run(self._outputs[:2], {self._input: batch})
        with self._last_lock:
            self._last = (batch.copy(), fmap[0])
        return vector, fmap


class OnnxFeatureMap:
    """The region pass served by the query model's map output (`retrieval.regions.FeatureMap`)."""

    def __init__(self, runner: OnnxRunner, side: int, lock: threading.Lock) -> None:
        """`lock`: the query's, so that one forward runs at a time, as with one model."""
        self.side = side
        self._runner = runner
        self._lock = lock

    def __call__(self, prepared: np.ndarray) -> np.ndarray:
        """(1, S, S, 3) prepared input → (g, g, D) float32 map."""
        with self._lock:
            return self._runner.feature_map(prepared)


def session_options(threads: int) -> "object":
    """The product's `onnxruntime.SessionOptions` (benchmarks/onnx_memory.py varies them)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def release_freed_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`); False where
    the C library has no such call (musl), which only costs memory."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
