"""Every study metric against values worked out by hand."""

import numpy as np
import pytest

from index.evaluation import metrics

# Three queries, five ranks:
#   q0 hits at ranks 1 and 3 (2 relevant in the catalog)
#   q1 hits nothing           (3 relevant in the catalog)
#   q2 hits at ranks 2..5    (10 relevant in the catalog)
REL = np.array(
    [
        [1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1],
    ],
    dtype=bool,
)
N_RELEVANT = [2, 3, 10]


def test_hit_rate_is_top_k_accuracy() -> None:
    assert metrics.hit_rate(REL, 1) == pytest.approx(1 / 3)
    assert metrics.hit_rate(REL, 2) == pytest.approx(2 / 3)
    assert metrics.hit_rate(REL, 5) == pytest.approx(2 / 3)


def test_precision_at_k() -> None:
    # (2/5 + 0 + 4/5) / 3
    assert metrics.precision_at(REL, 5) == pytest.approx(0.4)
    # (1 + 0 + 0) / 3
    assert metrics.precision_at(REL, 1) == pytest.approx(1 / 3)
    # (1/2 + 0 + 1/2) / 3
    assert metrics.precision_at(REL, 2) == pytest.approx(1 / 3)


def test_average_precision_per_query() -> None:
    ap = metrics.average_precision_at(REL, N_RELEVANT, 5)
    # q0: (P@1 + P@3) / min(2, 5) = (1 + 2/3) / 2
    # q2: (1/2 + 2/3 + 3/4 + 4/5) / min(10, 5)
    expected = [(1 + 2 / 3) / 2, 0.0, (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 5]
    np.testing.assert_allclose(ap, expected)
    assert metrics.mean_average_precision_at(REL, N_RELEVANT, 5) == pytest.approx(sum(expected) / 3)


def test_average_precision_with_nothing_relevant_in_the_catalog_is_zero() -> None:
    np.testing.assert_allclose(metrics.average_precision_at(REL[1:2], [0], 10), [0.0])


def test_average_precision_rewards_finding_all_relevant_items() -> None:
    one_of_five = metrics.average_precision_at(np.array([[1, 0, 0, 0, 0]], bool), [5], 5)
    five_of_five = metrics.average_precision_at(np.ones((1, 5), bool), [5], 5)
    assert one_of_five[0] == pytest.approx(0.2)
    assert five_of_five[0] == pytest.approx(1.0)


def test_short_result_lists_count_missing_ranks_as_misses() -> None:
    short = np.array([[1, 1]], dtype=bool)  # a catalog of two products
    assert metrics.precision_at(short, 5) == pytest.approx(0.4)
    assert metrics.hit_rate(short, 5) == 1.0
    assert metrics.mean_average_precision_at(short, [2], 10) == pytest.approx(1.0)


def test_metrics_reject_a_bad_k_or_shape() -> None:
    with pytest.raises(ValueError, match="k must be"):
        metrics.hit_rate(REL, 0)
    with pytest.raises(ValueError, match="2-D"):
        metrics.precision_at(np.array([True, False]), 1)
    with pytest.raises(ValueError, match="one count per query"):
        metrics.average_precision_at(REL, [1, 2], 5)


def test_strict_relevance_compares_primary_labels() -> None:
    rel = metrics.strict_relevance(["sofa", "bed"], [["sofa", None, "chair"], ["sofa"]])
    np.testing.assert_array_equal(rel, [[True, False, False], [False, False, False]])


def test_any_label_relevance_is_the_modified_multi_label_match() -> None:
    query = [frozenset({"sofa", "bed"}), frozenset({"lamp"})]
    results = [
        [frozenset({"bed"}), frozenset({"chair"}), frozenset({"chair", "sofa"}), frozenset()],
        [frozenset({"lamp", "table"})],
    ]
    rel = metrics.any_label_relevance(query, results)
    np.testing.assert_array_equal(rel, [[True, False, True, False], [True, False, False, False]])
    # the modified metrics on it: Acc@5 = 1, P@5 = (2/5 + 1/5) / 2
    assert metrics.hit_rate(rel, 5) == 1.0
    assert metrics.precision_at(rel, 5) == pytest.approx(0.3)


def test_multi_label_product_is_a_modified_hit_but_not_a_strict_one() -> None:
    # query "sofa"; the result is a product labelled ("bed", "sofa"): primary "bed"
    strict = metrics.strict_relevance(["sofa"], [["bed"]])
    modified = metrics.any_label_relevance([frozenset({"sofa"})], [[frozenset({"bed", "sofa"})]])
    assert metrics.hit_rate(strict, 5) == 0.0
    assert metrics.hit_rate(modified, 5) == 1.0


def test_same_item_relevance_is_product_recall() -> None:
    rel = metrics.same_item_relevance(["p1", "p2"], [["p3", "p1"], ["p4", "p5"]])
    assert metrics.hit_rate(rel, 1) == 0.0  # R@1
    assert metrics.hit_rate(rel, 5) == 0.5  # R@5
