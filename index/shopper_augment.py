"""Catalog photo → a shopper's photo of the same product, for training the tuned head.

Shop photos are centred on white in studio light; shoppers' photos have rooms behind the
product, other light and white balance, tilted viewpoints, blur and heavy JPEG. Each view is a
pure function of (seed, image, view number) through `variant_rng`, so its features can be cached.
"""

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from index.evaluation.augment import variant_rng

WHITE = 235  # a catalog pixel brighter than this in every channel is studio background


def shopper_view(image: np.ndarray, seed: int, content_hash: str, view: int) -> np.ndarray:
    """(H, W, 3) uint8 → (h, w, 3) uint8: background, perspective, crop, light, blur, JPEG."""
    rng = variant_rng(seed, content_hash, f"shopper{view}")
    pixels = on_background(image, room_texture(image.shape[:2], rng))
    pil = Image.fromarray(pixels)
    pil = _perspective(pil, rng, strength=0.12)
    pil = _zoom_crop(pil, rng, area=float(rng.uniform(0.6, 1.0)))
    pil = _light(pil, rng)
    if rng.random() < 0.5:
        pil = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.6))))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(rng.integers(35, 90)))
    return np.asarray(Image.open(buffer).convert("RGB"))


def room_texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: a wall above a floor, each a tinted gradient with grain or planks."""
    height, width = shape
    horizon = int(height * rng.uniform(0.45, 0.85))
    wall = rng.uniform(90, 240, 3)
    floor = rng.uniform(40, 200, 3)
    rows = np.linspace(0.8, 1.1, height)[:, None, None]  # (H, 1, 1) light falling off
    base = np.where(np.arange(height)[:, None, None] < horizon, wall, floor) * rows  # (H, 1, 3)
    texture = np.broadcast_to(base, (height, width, 3)).copy()
    planks = (np.arange(width) // max(8, int(rng.integers(20, 80))) % 2)[None, :, None]  # (1,W,1)
    texture[horizon:] *= 1 - 0.12 * planks  # boards on the floor
    texture += rng.normal(0, rng.uniform(2, 12), texture.shape)
    return np.clip(texture, 0, 255).astype(np.uint8)


def on_background(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Replace the studio-white background of an (H, W, 3) photo with `background`."""
    white = (image > WHITE).all(axis=2)  # (H, W)
    mask = np.asarray(
        Image.fromarray((~white * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(3))
    )  # the product, grown by a pixel so its edges keep their own colour
    alpha = (mask[..., None] / 255.0).astype(np.float32)
    return (alpha * image + (1 - alpha) * background).astype(np.uint8)


def _perspective(pil: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """A random viewpoint tilt: each corner moved by up to `strength` of the side."""
    width, height = pil.size
    jitter = rng.uniform(-strength, strength, 8) * np.array([width, height] * 4)
    corners = np.array([0, 0, width, 0, width, height, 0, height], dtype=np.float64) + jitter
    target = [(0, 0), (width, 0), (width, height), (0, height)]
    source = corners.reshape(4, 2)
    rows = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coefficients = np.linalg.solve(np.array(rows), source.reshape(8))
    return pil.transform(
        pil.size, Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BILINEAR
    )


def _zoom_crop(pil: Image.Image, rng: np.random.Generator, area: float) -> Image.Image:
    width, height = pil.size
    scale = float(np.sqrt(area))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    return pil.crop((left, top, left + w, top + h))


def _light(pil: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation and a white-balance cast."""
    pil = ImageEnhance.Brightness(pil).enhance(rng.uniform(0.6, 1.25))
    pil = ImageEnhance.Contrast(pil).enhance(rng.uniform(0.7, 1.2))
    pil = ImageEnhance.Color(pil).enhance(rng.uniform(0.6, 1.3))
    gains = rng.uniform(0.85, 1.15, 3)  # (3,) per-channel white balance
    pixels = np.asarray(pil, dtype=np.float32) * gains
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
