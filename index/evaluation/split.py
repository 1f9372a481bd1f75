"""Stratified catalog/query split by seed, with a guard against leakage.

The unit of the split is a *content group*: every image with the same content hash. A group goes
wholly to one side, so an exact copy of a query can never sit in the searched catalog and answer
it (the original study's leak). Groups are stratified by their primary label; distractor groups
(no kept label) always stay in the catalog.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.evaluation.dataset import LabelledImage


class LeakageError(ValueError):
    """The same image content appears on both sides of a split."""


@dataclass(frozen=True)
class Split:
    """Indices into the dataset's images: the searched catalog and the queries."""

    seed: int
    catalog: tuple[int, ...]
    queries: tuple[int, ...]


def stratified_split(
    images: Sequence[LabelledImage], *, seed: int, test_fraction: float = 0.2
) -> Split:
    """Send round(test_fraction * groups) content groups of each class to the queries.

    Every class with two or more groups keeps at least one group on each side. The result depends
    only on the images and the seed (not on input order), so runs are reproducible.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, image in enumerate(images):
        groups[image.content_hash].append(i)
    strata: dict[str | None, list[str]] = defaultdict(list)
    for content_hash, members in groups.items():
        strata[_group_stratum([images[i] for i in members])].append(content_hash)

    rng = np.random.default_rng(seed)
    queries: list[int] = []
    catalog: list[int] = []
    for stratum in sorted(strata, key=lambda s: (s is None, s or "")):
        hashes = sorted(strata[stratum])
        n_test = 0 if stratum is None else _test_count(len(hashes), test_fraction)
        order = rng.permutation(len(hashes))
        for rank, position in enumerate(order):
            side = queries if rank < n_test else catalog
            side.extend(groups[hashes[position]])
    split = Split(seed=seed, catalog=tuple(sorted(catalog)), queries=tuple(sorted(queries)))
    check_no_leakage(images, split)
    return split


def check_no_leakage(images: Sequence[LabelledImage], split: Split) -> None:
    """Raise LeakageError if any content hash is on both sides or an index is used twice."""
    both = set(split.catalog) & set(split.queries)
    if both:
        raise LeakageError(f"{len(both)} images are both catalog and query (e.g. #{min(both)})")
    catalog_hashes = {images[i].content_hash for i in split.catalog}
    leaked = sorted({images[i].content_hash for i in split.queries} & catalog_hashes)
    if leaked:
        raise LeakageError(
            f"{len(leaked)} query images have an identical copy in the catalog "
            f"(content hash {leaked[0][:12]}...)"
        )


def _group_stratum(members: list[LabelledImage]) -> str | None:
    """A group's class: its members' most common primary label (ties: alphabetical)."""
    primaries = Counter(m.primary for m in members if m.primary is not None)
    if not primaries:
        return None
    return min(primaries, key=lambda label: (-primaries[label], label))


def _test_count(n_groups: int, test_fraction: float) -> int:
    if n_groups < 2:
        return 0
    return min(max(math.floor(n_groups * test_fraction + 0.5), 1), n_groups - 1)
