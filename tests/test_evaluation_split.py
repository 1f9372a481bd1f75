"""Rare classes, distractors, stratification and the leakage guard of the study's split."""

import random
from collections import Counter
from pathlib import Path

import pytest

from index.evaluation.dataset import LabelledImage, prepare_dataset
from index.evaluation.split import LeakageError, Split, check_no_leakage, stratified_split
from tests.synthetic import CatalogRow as Entry


def entry(product: str, labels: tuple[str, ...], content: str) -> Entry:
    return Entry(product, labels, Path(f"/catalog/{product}.jpg"), content)


def catalog() -> list[Entry]:
    entries = [entry(f"a{i}", ("a",), f"ha{i}") for i in range(10)]
    entries.append(entry("a-copy", ("a",), "ha0"))  # byte-identical to a0, another product
    entries += [entry(f"b{i}", ("b",), f"hb{i}") for i in range(5)]
    entries += [entry(f"c{i}", ("c",), f"hc{i}") for i in range(3)]  # rare
    # rare too: six entries but only three distinct images
    entries += [entry(f"d{i}", ("d",), f"hd{i % 3}") for i in range(6)]
    entries += [entry(f"o{i}", ("other",), f"ho{i}") for i in range(4)]  # distractors
    return entries


def test_rare_classes_are_dropped_counting_distinct_images() -> None:
    dataset = prepare_dataset(catalog(), min_class=5, distractors=("other",))
    assert dataset.classes == ("a", "b")
    assert dataset.dropped_classes == {"c": 3, "d": 3}
    assert dataset.dropped_images == 9
    assert dataset.distractors == 4
    assert dataset.duplicate_images == 2
    assert dataset.class_counts() == {"a": 10, "b": 5}


def test_without_distractors_a_catch_all_label_is_an_ordinary_class() -> None:
    dataset = prepare_dataset(catalog(), min_class=4)
    assert dataset.classes == ("a", "b", "other")
    assert dataset.distractors == 0


def test_a_multi_label_image_keeps_only_its_kept_labels() -> None:
    entries = [entry(f"a{i}", ("a",), f"ha{i}") for i in range(5)]
    entries.append(entry("x", ("c", "a"), "hx"))  # c is rare, a is kept
    dataset = prepare_dataset(entries, min_class=5)
    image = next(i for i in dataset.images if i.product_id == "x")
    assert image.labels == ("a",)
    assert image.primary == "a"


def test_split_is_stratified_80_20_per_class() -> None:
    dataset = prepare_dataset(catalog(), min_class=5, distractors=("other",))
    split = stratified_split(dataset.images, seed=0)
    query_classes = Counter(dataset.images[i].primary for i in split.queries)
    assert query_classes == {"a": 2, "b": 1}  # 10 groups -> 2, 5 groups -> 1
    assert len(split.catalog) + len(split.queries) == len(dataset.images)


def test_distractors_are_never_queries() -> None:
    dataset = prepare_dataset(catalog(), min_class=5, distractors=("other",))
    for seed in range(5):
        split = stratified_split(dataset.images, seed=seed)
        assert all(dataset.images[i].labels for i in split.queries)
        distractors = {i for i, image in enumerate(dataset.images) if not image.labels}
        assert distractors <= set(split.catalog)


def test_identical_images_always_land_on_the_same_side() -> None:
    dataset = prepare_dataset(catalog(), min_class=5, distractors=("other",))
    twins = [i for i, image in enumerate(dataset.images) if image.content_hash == "ha0"]
    assert len(twins) == 2
    sides = set()
    for seed in range(20):
        split = stratified_split(dataset.images, seed=seed)
        in_queries = {i in split.queries for i in twins}
        assert len(in_queries) == 1, f"seed {seed} split identical images"
        sides |= in_queries
    assert sides == {True, False}  # the pair was a query in some runs: the guard was exercised


def test_split_depends_on_seed_and_content_not_on_input_order() -> None:
    images = prepare_dataset(catalog(), min_class=5, distractors=("other",)).images
    shuffled = list(images)
    random.Random(7).shuffle(shuffled)

    def query_ids(imgs: tuple[LabelledImage, ...] | list[LabelledImage], seed: int) -> set[str]:
        split = stratified_split(imgs, seed=seed)
        return {imgs[i].product_id for i in split.queries}

    assert query_ids(images, 3) == query_ids(shuffled, 3)
    assert len({frozenset(query_ids(images, seed)) for seed in range(5)}) > 1


def test_every_class_keeps_a_catalog_image() -> None:
    entries = [entry(f"a{i}", ("a",), f"ha{i}") for i in range(2)]
    images = prepare_dataset(entries, min_class=2).images
    split = stratified_split(images, seed=0, test_fraction=0.9)
    assert len(split.queries) == 1 and len(split.catalog) == 1


def test_leakage_guard_rejects_a_copy_on_both_sides() -> None:
    images = prepare_dataset(catalog(), min_class=5, distractors=("other",)).images
    twins = [i for i, image in enumerate(images) if image.content_hash == "ha0"]
    others = [i for i in range(len(images)) if i not in twins]
    leaky = Split(seed=0, catalog=(twins[0], *others), queries=(twins[1],))
    with pytest.raises(LeakageError, match="identical copy"):
        check_no_leakage(images, leaky)
    overlapping = Split(seed=0, catalog=(0, 1), queries=(1,))
    with pytest.raises(LeakageError, match="both catalog and query"):
        check_no_leakage(images, overlapping)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_class"):
        prepare_dataset(catalog(), min_class=0)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(prepare_dataset(catalog()).images, seed=0, test_fraction=1.0)
