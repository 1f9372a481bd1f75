"""The study's view of a catalog: labelled images after dropping rare classes.

The protocol drops classes with fewer than ``min_class`` images before splitting, as the original
study did, but counts distinct images (content hashes), so copies of one photo cannot keep a
class alive. Optional *distractor* labels (catch-all classes such as IKEA's ``other``) keep their
images in the searched catalog, where they compete like any product, but never as queries and
never as a relevant answer: a catch-all label says nothing about what a photo shows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class EntryLike(Protocol):
    """What the study needs of a catalog entry (``index.catalog.CatalogEntry`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def categories(self) -> tuple[str, ...]: ...
    @property
    def image(self) -> Path: ...
    @property
    def content_hash(self) -> str: ...


@dataclass(frozen=True)
class LabelledImage:
    """One catalog image as the study sees it; ``labels == ()`` marks a distractor."""

    product_id: str
    labels: tuple[str, ...]
    content_hash: str
    path: Path

    @property
    def primary(self) -> str | None:
        """The label the plain (non-"modified") metrics compare: the entry's first kept label."""
        return self.labels[0] if self.labels else None

    @property
    def label_set(self) -> frozenset[str]:
        return frozenset(self.labels)


@dataclass(frozen=True)
class Dataset:
    images: tuple[LabelledImage, ...]
    classes: tuple[str, ...]
    dropped_classes: dict[str, int] = field(default_factory=dict)  # rare class -> distinct images
    dropped_images: int = 0
    distractor_labels: tuple[str, ...] = ()

    @property
    def distractors(self) -> int:
        return sum(1 for image in self.images if not image.labels)

    @property
    def duplicate_images(self) -> int:
        """Images whose exact content also appears under another entry."""
        counts = Counter(image.content_hash for image in self.images)
        return sum(n for n in counts.values() if n > 1)

    def class_counts(self) -> dict[str, int]:
        """Distinct images per kept class."""
        return _distinct_per_label((image.labels, image.content_hash) for image in self.images)


def prepare_dataset(
    entries: Iterable[EntryLike], *, min_class: int = 5, distractors: Sequence[str] = ()
) -> Dataset:
    """Keep classes with at least ``min_class`` distinct images; mark distractor-only images."""
    if min_class < 1:
        raise ValueError(f"min_class must be at least 1, got {min_class}")
    entries = list(entries)
    distractor_set = frozenset(distractors)
    counts = _distinct_per_label(
        (tuple(c for c in e.categories if c not in distractor_set), e.content_hash) for e in entries
    )
    kept = {label for label, n in counts.items() if n >= min_class}
    images: list[LabelledImage] = []
    dropped = 0
    for entry in entries:
        labels = tuple(c for c in entry.categories if c in kept)
        if not labels and not distractor_set.intersection(entry.categories):
            dropped += 1
            continue
        images.append(LabelledImage(entry.id, labels, entry.content_hash, Path(entry.image)))
    return Dataset(
        images=tuple(images),
        classes=tuple(sorted(kept)),
        dropped_classes={c: n for c, n in sorted(counts.items()) if c not in kept},
        dropped_images=dropped,
        distractor_labels=tuple(sorted(distractor_set)),
    )


def _distinct_per_label(items: Iterable[tuple[tuple[str, ...], str]]) -> dict[str, int]:
    hashes: dict[str, set[str]] = defaultdict(set)
    for labels, content_hash in items:
        for label in labels:
            hashes[label].add(content_hash)
    return {label: len(h) for label, h in hashes.items()}
