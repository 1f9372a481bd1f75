"""Search + scoring of one run on hand-placed 2-D vectors, every number worked out by hand."""

from pathlib import Path

import numpy as np
import pytest

from index.evaluation.dataset import LabelledImage
from index.evaluation.scoring import rank_products, run_once
from index.evaluation.served_index import served_index


def image(product: str, labels: tuple[str, ...]) -> LabelledImage:
    return LabelledImage(product, labels, f"hash-{product}-{labels}", Path(f"{product}.jpg"))


# The catalog side: A (sofa) with one augmented copy, B (bed+sofa: primary "bed"),
# C (chair), D (a distractor: no label).
CATALOG = [
    image("A", ("sofa",)),
    image("B", ("bed", "sofa")),
    image("C", ("chair",)),
    image("D", ()),
]
CATALOG_VECTORS = np.array(
    [[1.0, 0.0], [0.9, 0.436], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32
)
ROWS = [CATALOG[0], *CATALOG]  # the image each vector is of: A twice (photo and copy)

# Queries and the product rankings their cosine similarities give:
#   q1 sofa,  product A (another photo of A): A 1.0, A' .90, B .80, D .60, C 0   -> A B D C
#   q2 chair, product E (not in catalog):     D 1.0, B .96, A' .89, C .80, A .60 -> D B A C
#   q3 bed,   product F (not in catalog):     B 1.0, A' .98, D .96, A .80, C .60 -> B A D C
QUERIES = [image("A", ("sofa",)), image("E", ("chair",)), image("F", ("bed",))]
QUERY_VECTORS = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)


def test_rankings_have_one_entry_per_product_at_its_best_vector() -> None:
    with served_index(ROWS, CATALOG_VECTORS) as index:
        ranked = rank_products(index, QUERY_VECTORS)
    assert ranked == [["A", "B", "D", "C"], ["D", "B", "A", "C"], ["B", "A", "D", "C"]]


def test_run_scores_match_hand_computed_values() -> None:
    scores = run_once(ROWS, CATALOG_VECTORS, QUERIES, QUERY_VECTORS)
    m = scores.metrics
    # strict relevance: q1 [1,0,0,0]  q2 [0,0,0,1]  q3 [1,0,0,0]
    assert m["top1"] == pytest.approx(2 / 3)
    assert m["acc5"] == pytest.approx(1.0)
    assert m["p5"] == pytest.approx(1 / 5)
    # top-1 labels sofa, unlabelled (the distractor), bed: F1 sofa 1, chair 0, bed 1
    assert m["f1"] == pytest.approx(2 / 3)
    # any-label relevance: q1 [1,1,0,0] (B carries "sofa")  q2 [0,0,0,1]  q3 [1,0,0,0]
    assert m["macc5"] == pytest.approx(1.0)
    assert m["mp5"] == pytest.approx((2 / 5 + 1 / 5 + 1 / 5) / 3)
    # one catalog product per query label: AP = 1, 1/4 (hit at rank 4), 1
    assert m["map10"] == pytest.approx((1 + 0.25 + 1) / 3)
    # only q1's product has a photo in the catalog, and it comes first
    assert m["r1"] == pytest.approx(1.0)
    assert m["r5"] == pytest.approx(1.0)
    assert scores.n_queries == 3
    assert scores.n_catalog_products == 4
    assert scores.n_catalog_vectors == 5
    assert scores.index_bytes >= 5 * 2 * 4


def test_per_category_breakdown() -> None:
    per = run_once(ROWS, CATALOG_VECTORS, QUERIES, QUERY_VECTORS).per_category
    assert per["sofa"] == pytest.approx({"n": 1, "top1": 1, "acc5": 1, "p5": 0.2, "map10": 1})
    assert per["chair"] == pytest.approx({"n": 1, "top1": 0, "acc5": 1, "p5": 0.2, "map10": 0.25})
    assert per["bed"] == pytest.approx({"n": 1, "top1": 1, "acc5": 1, "p5": 0.2, "map10": 1})


def test_product_recall_is_unmeasured_without_a_product_on_both_sides() -> None:
    scores = run_once(ROWS, CATALOG_VECTORS, QUERIES[1:], QUERY_VECTORS[1:])
    assert scores.metrics["r1"] is None
    assert scores.metrics["r5"] is None


def test_depth_is_reached_even_when_copies_crowd_the_top() -> None:
    # ten copies of X closest to the query, then Y: Y must still be ranked second
    vectors = np.array([[1.0, 0.0]] * 10 + [[0.0, 1.0]], dtype=np.float32)
    rows = [image("X", ("x",))] * 10 + [image("Y", ("y",))]
    with served_index(rows, vectors) as index:
        ranked = rank_products(index, np.array([[1.0, 0.1]], np.float32))
    assert ranked == [["X", "Y"]]


def test_rankings_are_the_products_second_stage_and_one_slot_per_picture() -> None:
    # bare cosine order: S1 .99, C .98, P (same picture as S1) .97, S2 .90
    vectors = np.array([[0.99, 0.141], [0.98, 0.199], [0.97, 0.243], [0.9, 0.436]], np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    s1 = LabelledImage("S1", ("sofa",), "picture-1", Path("s1.jpg"))
    shared = LabelledImage("P", ("sofa",), "picture-1", Path("p.jpg"))
    chair = image("C", ("chair",))
    s2 = image("S2", ("sofa",))
    query = vectors[:1].copy()
    with served_index([s1, chair, shared, s2], vectors) as index:
        ranked = rank_products(index, query)
    # the nearest product's kind (sofa) first; P shares S1's picture, so it takes no slot
    assert ranked == [["S1", "S2", "C"]]
