"""Seeded image augmentation for the robustness options.

*Index* augmentation adds K mild variants of every catalog image to the searched index, as the
original study did (flip, small rotation, zoom, brightness). *Query* augmentation replaces each
query with a harsher view closer to a shopper's photo: an off-centre crop, a tilt, and colour
jitter. Each variant is a pure function of (seed, image content, variant), so its features can be
cached and every backbone sees exactly the same pixels.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageEnhance


def variant_rng(seed: int, content_hash: str, variant: str) -> np.random.Generator:
    """A generator that depends only on the seed, the image and the variant name."""
    digest = hashlib.sha256(f"{seed}:{content_hash}:{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def augment_for_index(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) uint8: flip, +-15 degrees, 80-100 % zoom, +-15 % brightness."""
    pil = Image.fromarray(image)
    if rng.random() < 0.5:
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pil = _rotate(pil, rng.uniform(-15.0, 15.0))
    zoomed = _crop(pil, area=rng.uniform(0.8, 1.0), rng=rng)
    pil = zoomed.resize(pil.size, Image.Resampling.BILINEAR)
    pil = ImageEnhance.Brightness(pil).enhance(rng.uniform(0.85, 1.15))
    return np.asarray(pil, dtype=np.uint8)


def augment_for_query(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8: 50-85 % crop anywhere, +-20 degrees, colour jitter."""
    pil = Image.fromarray(image)
    pil = _rotate(pil, rng.uniform(-20.0, 20.0))
    pil = _crop(pil, area=rng.uniform(0.5, 0.85), rng=rng)
    pil = ImageEnhance.Brightness(pil).enhance(rng.uniform(0.75, 1.25))
    pil = ImageEnhance.Contrast(pil).enhance(rng.uniform(0.75, 1.25))
    pil = ImageEnhance.Color(pil).enhance(rng.uniform(0.7, 1.3))
    return np.asarray(pil, dtype=np.uint8)


def _rotate(pil: Image.Image, degrees: float) -> Image.Image:
    """Rotate in place, filling the uncovered corners with the photo's own corner colour."""
    pixels = np.asarray(pil)
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]  # (4, 3)
    fill = tuple(int(v) for v in np.median(corners, axis=0))
    return pil.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=fill)


def _crop(pil: Image.Image, *, area: float, rng: np.random.Generator) -> Image.Image:
    """A random crop covering ``area`` of the image, with the image's aspect ratio."""
    width, height = pil.size
    scale = float(np.sqrt(area))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    left = int(rng.integers(0, width - w + 1))
    top = int(rng.integers(0, height - h + 1))
    return pil.crop((left, top, left + w, top + h))
