"""Every odd or hostile input either becomes a clean RGB array or a typed, friendly error."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from retrieval.decode import decode_image
from retrieval.errors import ImageError
from retrieval.limits import ImageLimits
from tests.synthetic import jpeg_bytes


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_plain_jpeg_decodes_to_rgb_uint8() -> None:
    array = decode_image(jpeg_bytes(Image.new("RGB", (40, 30), (10, 200, 30))))
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8
    assert abs(int(array[15, 20, 1]) - 200) < 6


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    array = decode_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert array.shape == (40, 20, 3)


def test_alpha_is_composited_on_white() -> None:
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    array = decode_image(encode(image, "PNG"))
    assert (array == 255).all()


def test_palette_with_transparency_is_composited() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0] * 256)
    array = decode_image(encode(image, "PNG", transparency=0))
    assert (array == 255).all()


def test_cmyk_becomes_rgb() -> None:
    array = decode_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    assert array.shape == (8, 8, 3)
    assert array[4, 4, 0] > 200 and array[4, 4, 1] < 60  # red


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    deep = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    array = decode_image(encode(deep, "PNG"))
    assert array.shape == (8, 8, 3)
    assert 120 <= array[0, 0, 0] <= 135  # half of 16-bit range → half of 8-bit range


def test_greyscale_and_bilevel_become_rgb() -> None:
    for mode in ("L", "1"):
        array = decode_image(encode(Image.new(mode, (8, 8), 1 if mode == "1" else 128), "PNG"))
        assert array.shape == (8, 8, 3)


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    array = decode_image(data)
    assert array[0, 0, 0] > 200 and array[0, 0, 2] < 50


def test_webp_decodes() -> None:
    assert decode_image(encode(Image.new("RGB", (8, 8), "blue"), "WEBP")).shape == (8, 8, 3)


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (b"", "read"),
        (b"hello, this is text and not a picture", "read"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "read"),
        (b"\x00" * 1000, "read"),
    ],
)
def test_non_images_are_refused_politely(data: bytes, word: str) -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert word in caught.value.user_message


def test_truncated_jpeg_is_refused() -> None:
    data = jpeg_bytes(Image.effect_noise((256, 256), 60).convert("RGB"))
    with pytest.raises(ImageError) as caught:
        decode_image(data[: len(data) // 2])
    assert "damaged" in caught.value.user_message


def test_too_many_bytes_is_refused() -> None:
    data = jpeg_bytes(Image.new("RGB", (64, 64)))
    with pytest.raises(ImageError) as caught:
        decode_image(data, limits=ImageLimits(max_bytes=len(data) - 1))
    assert "too large" in caught.value.user_message


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions: a decompression bomb's calling card."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(png_claiming(60_000, 60_000))  # Pillow's own bomb guard fires at open
    assert "too many pixels" in caught.value.user_message
    with pytest.raises(ImageError) as caught:
        decode_image(png_claiming(9_000, 8_000))  # under Pillow's guard, over ours
    assert "9000×8000" in caught.value.user_message


def test_pixel_limit_is_configurable() -> None:
    data = jpeg_bytes(Image.new("RGB", (100, 100)))
    with pytest.raises(ImageError):
        decode_image(data, limits=ImageLimits(max_pixels=9_999))
    assert decode_image(data, limits=ImageLimits(max_pixels=10_000)).shape == (100, 100, 3)


def test_large_jpeg_decodes_at_a_reduced_scale_but_never_below_min_side() -> None:
    data = jpeg_bytes(Image.effect_noise((1600, 1200), 40).convert("RGB"))
    assert decode_image(data).shape == (1200, 1600, 3)
    assert decode_image(data, min_side=224).shape == (300, 400, 3)  # 1/4 scale
    assert decode_image(data, min_side=600).shape == (600, 800, 3)  # 1/2 scale
    png = encode(Image.new("RGB", (1600, 1200)), "PNG")
    assert decode_image(png, min_side=224).shape == (240, 320, 3)  # not a JPEG: reduced by 5
    assert decode_image(png, min_side=700).shape == (1200, 1600, 3)  # a factor of 1: as is
