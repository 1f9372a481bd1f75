"""Catalog image file → bytes Telegram accepts as a photo, or None to fall back to text.

Telegram takes JPEG/PNG/WebP photos up to 10 MB; other formats and oversized files are
re-encoded as a JPEG of at most 1280 px, the size Telegram would show anyway.

The file is read through the core's bounded reader: a catalog file changed after the build
(grown huge, become a FIFO or a link to a device) costs its product a text line, never a
reply that hangs or memory without bound.
"""

import io
import logging
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from retrieval.bounded_read import read_image_file
from retrieval.errors import ImageError

log = logging.getLogger(__name__)

PHOTO_LIMIT = 10 * 1024 * 1024
READ_LIMIT = 64 * 1024 * 1024  # well above the 20 MB the index build accepts by default
SENDABLE = {".jpg", ".jpeg", ".png", ".webp"}
MAX_SIDE = 1280


def load_photo(path: Path | None) -> bytes | None:
    """Bytes to upload for a product image (blocking file I/O; call it off the loop)."""
    if path is None:
        return None
    try:
        data = read_image_file(path, READ_LIMIT)
    except ImageError as error:
        log.warning("product image unreadable, sending text instead: %s (%s)", path, error)
        return None
    if path.suffix.lower() in SENDABLE and len(data) <= PHOTO_LIMIT:
        return data
    return _as_jpeg(data, path)


def _as_jpeg(data: bytes, path: Path) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=88)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        log.warning("product image not sendable, sending text instead: %s (%s)", path, error)
        return None
    return out.getvalue()
