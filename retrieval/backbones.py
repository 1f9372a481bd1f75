"""The registry of headless CNN backbones: name → input size, feature size, preprocessing, builder.

Names are Keras's class names in lower case (`efficientnetb7`, `resnet50`, ...). Everything
here is plain data; Keras is imported only when a model is built.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.efficientnet_lite import LITE_VARIANTS, LITE_WEIGHTS, preprocess_lite
from retrieval.errors import ConfigError

if TYPE_CHECKING:
    import keras

Preprocess = Callable[[np.ndarray], np.ndarray]
Builder = Callable[[str | None, int], "keras.Model"]

_CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def preprocess_identity(batch: np.ndarray) -> np.ndarray:
    """EfficientNet's Keras models rescale and normalise inside the graph: feed 0..255 RGB."""
    return batch


def preprocess_tf(batch: np.ndarray) -> np.ndarray:
    """Inception-style: 0..255 → -1..1."""
    return batch / 127.5 - 1.0


def preprocess_caffe(batch: np.ndarray) -> np.ndarray:
    """ResNet50/VGG16 (Caffe-trained): RGB → BGR, minus the ImageNet channel means."""
    return batch[..., ::-1] - _CAFFE_BGR_MEAN


@dataclass(frozen=True)
class Backbone:
    """One headless feature extractor: what it eats, what it returns, how to build it."""

    name: str
    input_size: int  # default square side in pixels
    dim: int  # length of the pooled feature vector
    params: int  # parameters of the headless model
    min_size: int  # smallest input side the architecture accepts
    preprocess: Preprocess  # (N, S, S, 3) float32 RGB 0..255 → model input
    build: Builder  # (weights for Keras: "imagenet" | None | file path, side) → pooled model
    packaged_weights: Path | None = None  # weights shipped with snapfind, used for "imagenet"


def keras_application(class_name: str) -> Builder:
    """Builder for a `keras.applications` model: no classifier top, global average pooling."""

    def build(weights: str | None, size: int) -> "keras.Model":
        import keras

        constructor = getattr(keras.applications, class_name)
        return constructor(
            include_top=False, weights=weights, input_shape=(size, size, 3), pooling="avg"
        )

    return build


BACKBONES: dict[str, Backbone] = {}


def register_backbone(backbone: Backbone) -> Backbone:
    """Add (or replace) a backbone under its name."""
    BACKBONES[backbone.name] = backbone
    return backbone


def get_backbone(name: str) -> Backbone:
    """The backbone called `name` (case-insensitive), or a `ConfigError` naming the choices."""
    try:
        return BACKBONES[name.strip().lower()]
    except KeyError:
        choices = ", ".join(sorted(BACKBONES))
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {choices}") from None


# class name, default side, feature size, headless parameters, smallest side, preprocessing
_KERAS_APPLICATIONS: tuple[tuple[str, int, int, int, int, Preprocess], ...] = (
    ("EfficientNetB0", 224, 1280, 4_049_571, 32, preprocess_identity),
    ("EfficientNetB1", 240, 1280, 6_575_239, 32, preprocess_identity),
    ("EfficientNetB2", 260, 1408, 7_768_569, 32, preprocess_identity),
    ("EfficientNetB3", 300, 1536, 10_783_535, 32, preprocess_identity),
    ("EfficientNetB4", 380, 1792, 17_673_823, 32, preprocess_identity),
    ("EfficientNetB5", 456, 2048, 28_513_527, 32, preprocess_identity),
    ("EfficientNetB6", 528, 2304, 40_960_143, 32, preprocess_identity),
    ("EfficientNetB7", 600, 2560, 64_097_687, 32, preprocess_identity),
    ("ResNet50", 224, 2048, 23_587_712, 32, preprocess_caffe),
    ("InceptionV3", 299, 2048, 21_802_784, 75, preprocess_tf),
    ("VGG16", 224, 512, 14_714_688, 32, preprocess_caffe),
    ("NASNetLarge", 331, 4032, 84_916_818, 32, preprocess_tf),
    ("Xception", 299, 2048, 20_861_480, 71, preprocess_tf),
)

for _class, _side, _dim, _params, _min, _pre in _KERAS_APPLICATIONS:
    register_backbone(
        Backbone(_class.lower(), _side, _dim, _params, _min, _pre, keras_application(_class))
    )


def efficientnet_lite(variant: str) -> Builder:
    """Builder for our Keras port of EfficientNet-Lite (weights shipped in retrieval/weights)."""

    def build(weights: str | None, size: int) -> "keras.Model":
        from retrieval.efficientnet_lite import build_lite

        return build_lite(variant, weights, size)

    return build


# Lite's side, dimension and packaged weights are the port's own facts (plain data: importing
# it loads no Keras); only the headless parameter counts are stated here.
_LITE_PARAMS = {"efficientnet-lite0": 3_413_024, "efficientnet-lite2": 4_869_168}

# The backbone that works with no download at all: its weights ship inside the package.
OFFLINE_BACKBONE = "efficientnet-lite0"

for _lite in LITE_VARIANTS.values():
    register_backbone(
        Backbone(
            _lite.name,
            _lite.input_size,
            _lite.dim,
            _LITE_PARAMS[_lite.name],
            32,
            preprocess_lite,
            efficientnet_lite(_lite.name),
            packaged_weights=LITE_WEIGHTS[_lite.name],
        )
    )
