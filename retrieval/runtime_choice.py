"""Which runtime serves a backbone: a pure rule on the network's size, from measurements.

Measured (benchmarks/runtime_report.py, docs/performance.md): on EfficientNet-Lite0 at 224 px
LiteRT (XNNPACK) costs the same CPU per image as ONNX Runtime on one thread, scales to two
threads without extra CPU, and needs 40 % less memory; on EfficientNetB7 at 600 px LiteRT
saves nothing over Keras while ONNX Runtime spends a quarter less. Only those two ends were
measured; the line between them is drawn on parameters × pixels, the rough cost of a forward.
"""

from retrieval.backbones import Backbone

REFERENCE_SIDE = 224
# parameters × (side / 224)²: Lite0 3.4 M (LiteRT), B3 at 300 px 19 M, B4 at 380 px 51 M,
# B7 at 600 px 460 M (ONNX Runtime)
ONNX_FROM_COST = 50e6


def forward_cost(backbone: Backbone, input_size: int) -> float:
    """A rough per-image cost: parameters scaled by the input's area relative to 224 px."""
    return backbone.params * (input_size / REFERENCE_SIDE) ** 2


def choose_format(backbone: Backbone, input_size: int) -> str:
    """`"litert"` for small networks, `"onnx"` for large ones (see the module docstring)."""
    return "onnx" if forward_cost(backbone, input_size) >= ONNX_FROM_COST else "litert"
