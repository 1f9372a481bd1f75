"""Bare wall and floor are never objects: a box with almost no texture under it is dropped.

The texture is measured on the photo's own pixels, never on the white padding around it:
the frame's white-against-wall edge would make a bare wall by the frame look textured.
"""

import numpy as np

from retrieval.regions import FLAT, Regions, _texture
from retrieval.resize import to_square


def test_a_plain_wall_has_no_texture_even_beside_the_white_padding() -> None:
    wall = np.full((120, 320, 3), (205, 195, 175), np.uint8)  # wide: padded above and below
    square = to_square(wall, 320).astype(np.float32)
    texture = _texture(square, wall.shape[:2], 10)
    assert texture.max() < 1.0  # the rows the white padding cuts through included
    plain_std = square.mean(axis=2).reshape(10, 32, 10, 32).std(axis=(1, 3))
    assert plain_std.max() > 20  # what a std over the padded square would have said


def test_flat_boxes_are_the_ones_without_texture() -> None:
    checks = (np.indices((64, 64)).sum(axis=0) // 8 % 2 * 200).astype(np.uint8)
    photo = np.full((64, 128, 3), 128, np.uint8)
    photo[:, 64:] = checks[..., None]  # left half bare wall, right half a checked rug
    texture = _texture(to_square(photo, 128).astype(np.float32), photo.shape[:2], 4)
    content = texture[1:3]  # (2, 4): the rows of cells that cover the photo
    cells = np.array([(0, 0, 2, 2), (2, 0, 4, 2), (1, 0, 3, 2)])  # wall, rug, half of each
    regions = Regions(cells, np.zeros((2, 4, 8), np.float32), photo.shape[:2], content)
    assert regions.flat().tolist() == [True, False, False]
    assert content[:, :2].max() < FLAT <= content[:, 2:].min()
