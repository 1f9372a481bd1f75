"""Prove the Keras port: the same inputs through the PyTorch original and the Keras model.

Prints, per image, the cosine of the pooled 1280-d features and of the 1000-way logits, and
whether the top-1 class agrees; exits 1 if any cosine is below 0.999. Needs torch, so run it in
the conversion environment (see tools/convert_efficientnet_lite.py):

    PYTHONPATH=. /tmp/torchenv/bin/python tools/check_lite_agreement.py
"""

import argparse
import sys

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from skimage import data

from retrieval.efficientnet_lite import LITE_VARIANTS, LITE_WEIGHTS, build_lite, preprocess_lite
from retrieval.resize import to_square
from tools.convert_efficientnet_lite import source_path

THRESHOLD = 0.999
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "immunohistochemistry")
RANDOM_IMAGES = 4


def inputs(size: int, seed: int) -> dict[str, np.ndarray]:
    """Named (S, S, 3) uint8 images: scikit-image's photos, then uniform noise."""
    images = {name: to_square(getattr(data, name)(), size) for name in PHOTOS}
    rng = np.random.default_rng(seed)
    for i in range(RANDOM_IMAGES):
        images[f"random{i}"] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return images


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def torch_outputs(variant: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pooled (N, 1280), logits (N, 1000)) of the original PyTorch model."""
    model = EfficientNet.from_pretrained(variant, weights_path=str(source_path(variant))).eval()
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())  # NHWC → NCHW
    with torch.no_grad():
        pooled = model.extract_features(x).mean(dim=(2, 3))
        logits = model(x)
    return pooled.numpy(), logits.numpy()


def keras_outputs(variant: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = batch.shape[1]
    headless = build_lite(variant, LITE_WEIGHTS[variant], size)
    full = build_lite(variant, LITE_WEIGHTS[variant], size, include_top=True)
    return headless.predict(batch, verbose=0), full.predict(batch, verbose=0)


def check(variant: str, seed: int) -> float:
    """Print the comparison table of one variant; return its smallest cosine."""
    size = LITE_VARIANTS[variant].input_size
    images = inputs(size, seed)
    batch = preprocess_lite(np.stack(list(images.values())).astype(np.float32))
    t_pooled, t_logits = torch_outputs(variant, batch)
    k_pooled, k_logits = keras_outputs(variant, batch)
    cos_pooled, cos_logits = cosine(t_pooled, k_pooled), cosine(t_logits, k_logits)
    print(f"\n{variant} @ {size}px")
    print(f"{'image':<22}{'cos pooled':>12}{'cos logits':>12}{'top1 torch':>12}{'top1 keras':>12}")
    for i, name in enumerate(images):
        top_t, top_k = int(t_logits[i].argmax()), int(k_logits[i].argmax())
        print(f"{name:<22}{cos_pooled[i]:>12.8f}{cos_logits[i]:>12.8f}{top_t:>12}{top_k:>12}")
    print(
        f"largest 1 - cos: pooled {1 - cos_pooled.min():.1e}, logits {1 - cos_logits.min():.1e}; "
        f"largest |logit diff| {np.abs(t_logits - k_logits).max():.1e}"
    )
    return float(min(cos_pooled.min(), cos_logits.min()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=sorted(LITE_VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    worst = min(check(variant, args.seed) for variant in args.variants)
    verdict = "PASS" if worst >= THRESHOLD else "FAIL"
    print(f"\nsmallest cosine {worst:.8f} (threshold {THRESHOLD}): {verdict}")
    return 0 if worst >= THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main())
