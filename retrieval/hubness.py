"""Hub pictures: catalog photos that look like every room (a shelf shot in a furnished room).

A region cut from a room photo is, to a CNN, "indoor scene" first and "sofa" second, so the
catalog's own scene-like photos come up for every room. CSLS (Conneau et al., 2018) corrects
this: each catalog vector's hubness is its mean similarity to its K nearest *reference
regions*, and a match scores 2·cos − hubness. The reference regions here come from the catalog
itself (boxes cut from a sample of its photos, never a product's own photo), so no room photos
are needed and any shop's catalog works.
"""

from collections.abc import Iterable

import numpy as np

from retrieval.regions import RegionEncoder

HUBNESS_K = 50  # reference regions averaged per catalog vector
REGIONS_PER_PHOTO = 30  # boxes sampled from each reference photo


def reference_regions(
    encoder: RegionEncoder, photos: Iterable[tuple[int, np.ndarray]], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(M, D) unit vectors of random boxes of (product row, image) pairs, and (M,) their rows."""
    rng = np.random.default_rng(seed)
    vectors, owners = [], []
    for row, image in photos:
        found = encoder.regions(image)
        count = min(REGIONS_PER_PHOTO, len(found.cells))
        picked = rng.choice(len(found.cells), count, replace=False)
        vectors.append(found.vectors(picked))
        owners.append(np.full(count, row, dtype=np.int64))
    return np.concatenate(vectors), np.concatenate(owners)


def catalog_hubness(
    catalog: np.ndarray,
    product_of_vector: np.ndarray,
    references: tuple[np.ndarray, np.ndarray],
    k: int = HUBNESS_K,
    chunk: int = 4096,
) -> np.ndarray:
    """(V,) mean cosine of each catalog vector to its `k` nearest reference regions.

    Regions cut from a product's own photo are skipped: a product is not a hub for itself.
    """
    regions, owners = references
    k = min(k, len(regions))
    hubness = np.empty(len(catalog), dtype=np.float32)
    for start in range(0, len(catalog), chunk):
        block = catalog[start : start + chunk] @ regions.T  # (c, M)
        own = product_of_vector[start : start + chunk, None] == owners[None, :]
        block[own] = -1.0
        hubness[start : start + chunk] = np.sort(block, axis=1)[:, -k:].mean(axis=1)
    return hubness
