"""The second stage: category votes, alpha query expansion, and their manifest entries."""

from pathlib import Path

import numpy as np
import pytest

from index.build import BuildOptions, build_index
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.rerank import (
    DEFAULT,
    RerankParams,
    category_vote_scores,
    expand_query,
    grouped,
    vote_order,
)
from retrieval.results import Page

LABELS = [("chair",), ("table",), ("table",), ("chair",), ("table",)]
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5]


def test_off_by_default_keeps_the_similarity_order() -> None:
    stage = RerankParams()
    assert not stage.votes and not stage.expands and stage.candidates(5) == 5
    assert vote_order(SCORES, LABELS, weight=0.0) == [0, 1, 2, 3, 4]


def test_all_neighbours_voting_lifts_the_majority_kind() -> None:
    # tables hold 0.8+0.7+0.5 = 2.0 of 3.5 votes, chairs 1.5: the best table overtakes the chair
    assert vote_order(SCORES, LABELS, weight=1.0) == [1, 0, 2, 4, 3]
    assert vote_order(SCORES, LABELS, weight=0.1) == [0, 1, 2, 3, 4]
    combined = category_vote_scores(SCORES, LABELS, weight=1.0)
    assert combined[1] == pytest.approx(0.8 + 2.0 / 3.5)
    assert combined[0] == pytest.approx(0.9 + 1.5 / 3.5)


def test_one_voter_puts_the_nearest_kind_first_and_keeps_it_first() -> None:
    assert vote_order(SCORES, LABELS, weight=1.0, voters=1) == [0, 3, 1, 2, 4]


def test_a_catch_all_bin_is_no_kind_the_page_keeps_the_similarity_order() -> None:
    """IKEA files half its catalog under `other`: a page whose nearest product is in that bin
    would otherwise fill up with whatever else the bin holds."""
    labels = [("other",), ("chair",), ("table",), ("other",), ("chair",)]
    binned = RerankParams(depth=5, category_weight=1.0, voters=1)
    kinds = RerankParams(depth=5, category_weight=1.0, voters=1, kinds_only=1)
    assert vote_order(SCORES, [binned.kinds(c) for c in labels], 1.0, 1) == [0, 3, 1, 2, 4]
    assert vote_order(SCORES, [kinds.kinds(c) for c in labels], 1.0, 1) == [0, 1, 2, 3, 4]


def test_with_kinds_only_a_real_kind_still_comes_first_and_the_bin_gains_nothing() -> None:
    stage = RerankParams(depth=5, category_weight=1.0, voters=1, kinds_only=1)
    labels = [("chair",), ("other",), ("textile",), ("chair", "other"), ("",)]
    assert [stage.kinds(c) for c in labels] == [("chair",), (), (), ("chair",), ()]
    assert vote_order(SCORES, [stage.kinds(c) for c in labels], 1.0, 1) == [0, 3, 1, 2, 4]
    assert DEFAULT.kinds_only == 1  # new indexes leave the bins out; old manifests do not


def test_a_product_in_several_categories_takes_its_best_vote() -> None:
    labels = [("table",), ("chair", "table"), ("chair",)]
    combined = category_vote_scores([0.9, 0.5, 0.4], labels, weight=1.0)
    # table 0.9 + 0.5 = 1.4, chair 0.5 + 0.4 = 0.9: table wins 1.4 of the 2.3 votes cast
    assert combined[1] == pytest.approx(0.5 + 1.4 / 2.3)


def test_empty_input_and_negative_similarities_do_not_break_the_vote() -> None:
    assert vote_order([], [], weight=1.0) == []
    assert vote_order([-0.1, -0.2], [("a",), ("b",)], weight=1.0) == [0, 1]


def test_grouped_keeps_a_room_objects_own_order_within_each_kind() -> None:
    """An object's page is ordered by its hub-corrected margin, not by cosine: the vote moves
    the first product's kind ahead and keeps that order inside each kind."""
    kinds = {10: ("table",), 11: ("chair",), 12: ("table",), 13: ("chair",), 14: ("table",)}
    margin_order = [(10, 0.5), (11, 0.9), (12, 0.4), (13, 0.8), (14, 0.7), (15, 0.95)]
    stage = RerankParams(depth=5, category_weight=1.0, voters=1, kinds_only=1)
    regrouped = grouped(margin_order, lambda row: kinds.get(row, ("chair",)), stage)
    assert [row for row, _ in regrouped] == [10, 12, 14, 11, 13, 15]  # 15: past the depth
    assert grouped(margin_order, kinds.__getitem__, RerankParams()) == margin_order


def test_grouped_leaves_a_page_led_by_a_catch_all_bin_as_it_is() -> None:
    kinds = {1: ("other",), 2: ("chair",), 3: ("table",), 4: ("chair",)}
    pairs = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert grouped(pairs, kinds.__getitem__, DEFAULT) == pairs


def test_expansion_moves_the_query_towards_close_neighbours_only() -> None:
    query = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    neighbours = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    expanded = expand_query(query, neighbours, np.array([0.9, -0.5]), alpha=3.0)
    assert np.linalg.norm(expanded) == pytest.approx(1.0)
    assert expanded[1] > 0 and expanded[2] == 0  # a dissimilar neighbour has no weight
    assert expanded[0] > expanded[1]


def test_manifest_round_trip_and_an_old_manifest_searches_as_before() -> None:
    stage = RerankParams(
        depth=30, category_weight=1.0, voters=1, qe_top=2, qe_alpha=2.5, kinds_only=1
    )
    extra = {"embedded": 3} | stage.to_manifest()
    assert all(isinstance(v, int | float) for v in extra.values())  # Manifest.extra's types
    assert RerankParams.from_manifest(extra) == stage
    assert RerankParams.from_manifest({"embedded": 3}) == RerankParams()
    assert RerankParams.from_manifest({"rerank.depth": "20"}).depth == 20


def test_build_writes_the_default_stage_and_search_applies_it(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    build_index(shapes_catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False))
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    assert index.rerank == DEFAULT
    vector = index.vector_of("shop/circles/circles-1")
    plain = index.search(vector, Page(4), rerank=RerankParams())
    staged = index.search(vector, Page(4))
    assert plain[0].product.id == staged[0].product.id == "shop/circles/circles-1"
    shares = [bool(set(h.product.categories) & set(staged[0].product.categories)) for h in staged]
    # products of the nearest product's kind fill the page before any other kind
    assert shares == sorted(shares, reverse=True)
    assert {h.product.id for h in staged} <= {h.product.id for h in index.search(vector, Page(30))}
    expanded = index.search(vector, Page(4), rerank=RerankParams(qe_top=3))
    assert [h.score for h in expanded] == pytest.approx(
        [float(index.vector_of(h.product.id) @ vector) for h in expanded], abs=1e-5
    )


def test_a_deeper_page_keeps_the_order_of_the_first(
    shapes_catalog: Path, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    """The vote reorders the first `depth` neighbours only: "More" past the depth continues the
    ranking the first pages showed instead of re-voting over more products."""
    build_index(shapes_catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False))
    index = open_index(tmp_path / "idx", tiny_extractor.fingerprint)
    stage = RerankParams(depth=3, category_weight=1.0, voters=1)
    everything = len(index)
    for product in ("shop/circles/circles-1", "shop/squares/squares-0"):
        vector = index.vector_of(product)
        ranking = [h.product.id for h in index.search(vector, Page(everything), rerank=stage)]
        for k in range(1, everything):
            first = [h.product.id for h in index.search(vector, Page(k), rerank=stage)]
            assert first == ranking[:k], (product, k)
            deeper = index.search(vector, Page(1, offset=k), rerank=stage)
            assert [h.product.id for h in deeper] == ranking[k : k + 1], (product, k)
