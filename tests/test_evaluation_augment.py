"""Augmented views are seeded, change the pixels, and keep a valid RGB image."""

import numpy as np

from index.evaluation.augment import augment_for_index, augment_for_query, variant_rng


def photo() -> np.ndarray:
    """A 64x48 product on white: a dark rectangle off centre."""
    pixels = np.full((48, 64, 3), 255, dtype=np.uint8)
    pixels[10:40, 8:30] = (120, 60, 20)
    return pixels


def test_same_seed_image_and_variant_give_the_same_pixels() -> None:
    for augment in (augment_for_index, augment_for_query):
        first = augment(photo(), variant_rng(0, "hash", "v1"))
        again = augment(photo(), variant_rng(0, "hash", "v1"))
        np.testing.assert_array_equal(first, again)


def test_seed_image_and_variant_each_change_the_view() -> None:
    base = augment_for_query(photo(), variant_rng(0, "hash", "v1"))
    for seed, content, variant in [(1, "hash", "v1"), (0, "other", "v1"), (0, "hash", "v2")]:
        view = augment_for_query(photo(), variant_rng(seed, content, variant))
        assert not np.array_equal(base, view)


def test_index_views_keep_the_size_and_differ_from_the_original() -> None:
    view = augment_for_index(photo(), variant_rng(0, "hash", "index0"))
    assert view.shape == (48, 64, 3) and view.dtype == np.uint8
    assert not np.array_equal(view, photo())


def test_query_views_are_crops_with_the_image_aspect() -> None:
    view = augment_for_query(photo(), variant_rng(0, "hash", "query"))
    height, width, channels = view.shape
    assert channels == 3 and view.dtype == np.uint8
    assert height < 48 and width < 64  # 50-85 % of the area
    assert abs(width / height - 64 / 48) < 0.1


def test_rotation_fills_corners_with_the_background() -> None:
    white = np.full((32, 32, 3), 255, dtype=np.uint8)
    view = augment_for_index(white, variant_rng(0, "white", "index0"))
    # a white photo stays near-white whatever the brightness factor (at most 1.15x, clipped)
    assert view.min() >= int(255 * 0.85) - 1
