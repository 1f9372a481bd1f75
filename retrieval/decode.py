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

# Formats Pillow decodes in-process; EPS/PDF (Ghostscript) and other exotic plugins stay out.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # MPO opens as JPEG
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000

_UNREADABLE = "I couldn't read that as an image. Please send a JPEG, PNG or WebP photo."
_DAMAGED = "That image seems damaged or incomplete. Please try another photo."
_SMALLER = "Please send a smaller one."
_TOO_MANY_PIXELS = f"That image has far too many pixels. {_SMALLER}"


def decode_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> np.ndarray:
    """Decode `data` into an (H, W, 3) uint8 RGB array or raise `ImageError`.

    `min_side`: the caller will shrink the image to about this size anyway, so a JPEG may be
    decoded at 1/2, 1/4 or 1/8 scale (never below `min_side` on either side): a 12-megapixel
    phone photo then decodes several times faster.
    """
    if not data:
        raise ImageError("empty image data", _UNREADABLE)
    if len(data) > max_bytes:
        raise ImageError(
            f"image is {len(data)} bytes, over the {max_bytes}-byte limit",
            f"That file is too large (over {max_bytes // (1024 * 1024)} MB). "
            "Please send a smaller photo.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            _check_pixels(image.size, max_pixels)
            image.seek(0)  # animated images: the first frame
            if min_side:
                image.draft(None, (min_side, min_side))  # JPEG only; others ignore it
            image.load()
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


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})", _DAMAGED)
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} pixels, over the {max_pixels}-pixel limit",
            f"That image is too large ({width}×{height} pixels). {_SMALLER}",
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB; transparency composited on white, deep images scaled to 8 bits."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / peak * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
