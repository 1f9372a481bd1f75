"""Bytes → RGB array, safely: the one door through which any image enters snapfind.

Everything a user or a catalog can supply passes here, so every way an image can be odd
(orientation, alpha, palette, CMYK, 16-bit, animation) is normalised, and every way it can be
hostile (huge dimensions, truncation, non-image bytes, exotic formats) becomes an `ImageError`.
"""

import io
import warnings

import numpy as np

# Register exactly the decoders we allow (Pillow loads most plugins lazily).
from PIL import (  # noqa: F401
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from retrieval.errors import ImageError
from retrieval.limits import DEFAULT_LIMITS, MIN_QUERY_SIDE, ImageLimits

# Formats Pillow decodes in-process; EPS/PDF (Ghostscript) and other exotic plugins stay out.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # MPO opens as JPEG
# Bytes per pixel of Pillow's in-memory image by mode: modes not listed take 4 (RGB included).
_CANVAS_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_NOT_REDUCIBLE = {"1", "P", "I;16", "I;16L", "I;16B", "I;16N"}  # Image.reduce refuses these

_UNREADABLE = "I couldn't read that as an image. Please send a JPEG, PNG or WebP photo."
_DAMAGED = "That image seems damaged or incomplete. Please try another photo."
_SMALLER = "Please send a smaller one."
_TOO_MANY_PIXELS = f"That image has far too many pixels. {_SMALLER}"
_STRIP = "This image is a thin strip ({w}×{h} pixels). Please send a photo of the furniture."


def decode_image(
    data: bytes, *, limits: ImageLimits = DEFAULT_LIMITS, min_side: int | None = None
) -> np.ndarray:
    """Decode `data` into an (H, W, 3) uint8 RGB array or raise `ImageError`.

    Every bound of `limits` is checked on the header, before the decoder allocates anything.
    `min_side`: the caller will shrink the image to about this size anyway, so a JPEG may be
    decoded at 1/2, 1/4 or 1/8 scale (never below `min_side` on either side): a 12-megapixel
    phone photo then decodes several times faster. Other formats are box-reduced by a whole
    factor right after decoding, so no later step copies the full-size canvas.
    """
    if not data:
        raise ImageError("empty image data", _UNREADABLE)
    if len(data) > limits.max_bytes:
        raise ImageError(
            f"image is {len(data)} bytes, over the {limits.max_bytes}-byte limit",
            f"That file is too large (over {limits.max_bytes // (1024 * 1024)} MB). "
            "Please send a smaller photo.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            _check_dimensions(image.size, limits)
            image.seek(0)  # animated images: the first frame
            if min_side:
                image.draft(None, (min_side, min_side))  # JPEG only; others ignore it
            _check_canvas(image, limits)
            image.load()
            if min_side:
                image = _reduce(image, min_side)
            image = _to_rgb(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"decompression bomb: {error}", _TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise ImageError("not a supported image", _UNREADABLE) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"corrupt or truncated image: {error}", _DAMAGED) from None
    return np.asarray(image, dtype=np.uint8)


def is_jpeg(data: bytes) -> bool:
    """Whether `data` starts as a JPEG does: the one format that decodes at a draft scale, so
    a second, larger decode of it costs a few ms whatever its size."""
    return data[:3] == b"\xff\xd8\xff"


def require_query_side(image: np.ndarray) -> np.ndarray:
    """`image` if both its sides reach MIN_QUERY_SIDE; else an `ImageError` that asks for a
    larger photo (what a query is searched with, not what a catalog may hold)."""
    height, width = image.shape[:2]
    if min(height, width) < MIN_QUERY_SIDE:
        raise ImageError(
            f"image is {width}x{height}, a side under the {MIN_QUERY_SIDE}-pixel minimum",
            f"That image is too small to search ({width}×{height} pixels). "
            "Please send a larger photo.",
        )
    return image


def _check_dimensions(size: tuple[int, int], limits: ImageLimits) -> None:
    """Refuse a width × height that breaks a bound: pixels, longest side or aspect ratio."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})", _DAMAGED)
    if width * height > limits.max_pixels:
        raise ImageError(
            f"image is {width}x{height} pixels, over the {limits.max_pixels}-pixel limit",
            f"That image is too large ({width}×{height} pixels). {_SMALLER}",
        )
    longest, shortest = max(width, height), min(width, height)
    if longest / shortest > limits.max_aspect:
        raise ImageError(
            f"image is {width}x{height}, a thin strip past the {limits.max_aspect:g}:1 limit",
            _STRIP.format(w=width, h=height),
        )
    if longest > limits.max_side:
        raise ImageError(
            f"image is {width}x{height}, a side over the {limits.max_side}-pixel limit",
            f"That image is too large ({width}×{height} pixels). {_SMALLER}",
        )


def _check_canvas(image: Image.Image, limits: ImageLimits) -> None:
    """The decoder's buffer (after any draft scaling) must fit `limits.max_canvas_bytes`."""
    width, height = image.size
    canvas = width * height * _CANVAS_BYTES.get(image.mode, 4)
    if canvas > limits.max_canvas_bytes:
        raise ImageError(
            f"image needs a {canvas}-byte canvas ({width}x{height} {image.mode}), "
            f"over the {limits.max_canvas_bytes}-byte limit",
            _TOO_MANY_PIXELS,
        )


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    """Shrink by the largest whole factor that keeps both sides at least `min_side`."""
    factor = min(image.size) // min_side
    if factor < 2 or image.mode in _NOT_REDUCIBLE:
        return image
    return image.reduce(factor)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB; transparency composited on white, deep images scaled to 8 bits."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        image = Image.fromarray(_deep_to_8_bits(image), "L")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _deep_to_8_bits(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer and float pixels → uint8 by the range their type implies.

    Floats within 0..1 are read as 0..1 (the float TIFF convention), not as 0..255 (black).
    """
    pixels = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(pixels.max())
    if image.mode.startswith("I;16") or top > 255:
        peak = 65535.0
    elif image.mode == "F" and top <= 1.0:
        peak = 1.0
    else:
        peak = 255.0
    pixels *= 255.0 / peak
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)
