"""Photo → the backbone's last feature map (before pooling), run by Keras or by LiteRT.

The region pass (`retrieval.regions`) pools hundreds of boxes from one map. The same network as
the extractor's, rebuilt at a larger square side and stopped before its global average pooling;
exported next to the pooled model (`retrieval.runtime_export`) so a serving process that runs
LiteRT never imports TensorFlow for it either.
"""

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

    from retrieval.extractor import Extractor

REGION_SIDE = 256  # region pass input side for Lite0 (224 px queries): an 8×8 map (docs/objects.md)


def region_side(input_size: int) -> int:
    """The region pass's square side: REGION_SIDE, or the query side itself for backbones that
    already look at more pixels than that (EfficientNetB7: 600, a 19×19 map whose last cells
    reach past the photo by 8 px). Equal sides let one exported model give the query's vector
    and the room's map from one forward (`retrieval.runtime_file.regions_file`)."""
    return max(REGION_SIDE, input_size)


def feature_map_model(extractor: "Extractor", side: int) -> "keras.Model":
    """The extractor's Keras network at `side` without its pooling: (N, S, S, 3) → (N, g, g, D)."""
    import keras

    pooled = extractor.backbone.build(None, side)
    pooled.set_weights(extractor.model.get_weights())  # same layers, other input side
    return keras.Model(pooled.input, map_before_pooling(pooled), name=f"{extractor.model_name}_map")


def map_before_pooling(model: "keras.Model") -> "keras.KerasTensor":
    """The (N, g, g, D) tensor that `model`'s global average pooling reduces."""
    import keras

    return next(
        layer
        for layer in reversed(model.layers)
        if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ).input


class KerasFeatureMap:
    """The map computed by Keras (the source of truth; needs TensorFlow)."""

    def __init__(self, extractor: "Extractor", side: int) -> None:
        import tensorflow as tf

        self.side = side
        model = feature_map_model(extractor, side)
        spec = tf.TensorSpec([1, side, side, 3], tf.float32)

        @tf.function(input_signature=[spec], autograph=False)
        def forward(batch: tf.Tensor) -> tf.Tensor:
            return model(batch, training=False)

        self._forward = forward
        self._lock = threading.Lock()

    def __call__(self, prepared: np.ndarray) -> np.ndarray:
        """(1, S, S, 3) prepared input → (g, g, D) float32 map."""
        with self._lock:
            return self._forward(prepared).numpy()[0]


class LiteRTFeatureMap:
    """The exported map model run by the standalone LiteRT interpreter: no TensorFlow."""

    def __init__(self, model: Path, side: int, threads: int = 0) -> None:
        from retrieval.runtime_extractor import LiteRTRunner

        self.side = side
        self._runner = LiteRTRunner(model, threads)
        self._lock = threading.Lock()

    def __call__(self, prepared: np.ndarray) -> np.ndarray:
        """(1, S, S, 3) prepared input → (g, g, D) float32 map."""
        with self._lock:
            return self._runner.run(prepared)[0]
