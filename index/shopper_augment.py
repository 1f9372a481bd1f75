"""Catalog photo → a shopper's photo of the same product, for training the tuned head.

Shop photos are centred on white in studio light; shoppers' photos have rooms behind the
product, other light and white balance, tilted viewpoints, blur and heavy JPEG. Each view is a
pure function of (seed, image, view number) through `variant_rng`, so its features can be cached.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from index.evaluation.augment import variant_rng

WHITE = 235  # a catalog pixel brighter than this in every channel is studio background


@dataclass(frozen=True)
class Scene:
    """How a product of one category stands in a home: with which others around it."""

    companion: str  # category of the pictures placed around it
    fewest: int
    most: int
    height: tuple[float, float]  # a companion's height, relative to the product's


# A table is photographed at home with chairs around it (IKEA's own "table and 4 chairs" sets
# are in its `chair` category); a bed with its nightstands. Keyed by catalog category.
SCENES = {
    "table": Scene("chair", 2, 4, (0.7, 1.1)),
    "bed": Scene("nightstand", 1, 2, (0.35, 0.6)),
}


def shopper_view(image: np.ndarray, seed: int, content_hash: str, view: int) -> np.ndarray:
    """(H, W, 3) uint8 → (h, w, 3) uint8: background, perspective, crop, light, blur, JPEG."""
    return _photograph(image, variant_rng(seed, content_hash, f"shopper{view}"), 0.6)


def furnished_view(
    image: np.ndarray,
    companions: list[np.ndarray],
    scene: Scene,
    key: tuple[int, str, int],
) -> np.ndarray:
    """(H, W, 3) uint8 → (h, w, 3) uint8: the product among `companions` (other catalog
    pictures on white: chairs around a table, nightstands beside a bed), then photographed as
    `shopper_view` does, cropped less so the product stays whole. `key` = (seed, content hash,
    view), as `shopper_view`'s."""
    seed, content_hash, view = key
    rng = variant_rng(seed, content_hash, f"furnished{view}")
    return _photograph(arrange(image, companions, scene, rng), rng, 0.8)


def pick_companions(pool: list[str], scene: Scene, key: tuple[int, str, int]) -> list[str]:
    """Which of `pool` (companion pictures' hashes) stand around the product in this view."""
    seed, content_hash, view = key
    rng = variant_rng(seed, content_hash, f"company{view}")
    count = min(len(pool), int(rng.integers(scene.fewest, scene.most + 1)))
    return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]


def arrange(
    image: np.ndarray, companions: list[np.ndarray], scene: Scene, rng: np.random.Generator
) -> np.ndarray:
    """(H, W, 3) uint8 on white: the product (trimmed to itself) in the middle of a wider white
    canvas, half the companions behind it at its sides, the others in front, lower down."""
    main = _trimmed(image)
    height = image.shape[0]
    scale = 0.6 * height / main.shape[0]
    main = _resized(main, scale)
    canvas = np.full((height, int(height * 1.6), 3), 255, np.uint8)
    centre = canvas.shape[1] // 2
    floor = int(height * 0.92)
    placed = []
    for number, picture in enumerate(companions):
        piece = _trimmed(picture)
        size = main.shape[0] * float(rng.uniform(*scene.height)) / piece.shape[0]
        size = min(size, 0.5 * main.shape[1] / piece.shape[1])
        piece = _resized(piece, size)
        side = -1 if number % 2 == 0 else 1
        front = number >= 2
        x = (
            centre
            + side * int(main.shape[1] * float(rng.uniform(0.35, 0.55)))
            - piece.shape[1] // 2
        )
        y = floor + (int(height * 0.06) if front else -int(height * 0.04)) - piece.shape[0]
        placed.append((front, piece, x, y))
    for front, piece, x, y in placed:
        if not front:
            _paste(canvas, piece, x, y)
    _paste(canvas, main, centre - main.shape[1] // 2, floor - main.shape[0])
    for front, piece, x, y in placed:
        if front:
            _paste(canvas, piece, x, y)
    return canvas


def _trimmed(image: np.ndarray) -> np.ndarray:
    """The product's bounding box: the picture without its studio-white margins."""
    rows, cols = np.nonzero(~(image > WHITE).all(axis=2))
    if rows.size == 0:
        return image
    return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    width = max(1, round(image.shape[1] * scale))
    height = max(1, round(image.shape[0] * scale))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def _paste(canvas: np.ndarray, piece: np.ndarray, x: int, y: int) -> None:
    """Copy the non-white pixels of `piece` onto `canvas` at (x, y), clipped to the canvas."""
    top, left = max(0, y), max(0, x)
    bottom = min(canvas.shape[0], y + piece.shape[0])
    right = min(canvas.shape[1], x + piece.shape[1])
    if bottom <= top or right <= left:
        return
    part = piece[top - y : bottom - y, left - x : right - x]
    solid = ~(part > WHITE).all(axis=2)
    canvas[top:bottom, left:right][solid] = part[solid]


def _photograph(image: np.ndarray, rng: np.random.Generator, smallest: float) -> np.ndarray:
    """A product photo on white as a shopper takes it: room behind, tilt, a crop keeping at
    least `smallest` of the area, light, blur, JPEG."""
    pixels = on_background(image, room_texture(image.shape[:2], rng))
    pil = Image.fromarray(pixels)
    pil = _perspective(pil, rng, strength=0.12)
    pil = _zoom_crop(pil, rng, area=float(rng.uniform(smallest, 1.0)))
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
