"""A second stage over the first neighbours: reward what the neighbours agree on.

A shopper's photo differs from the catalog's in light, angle and background, so its single
nearest product is often right in colour and wrong in kind (a black chair finds a black bed).
The first neighbours, taken together, are a steadier witness than any one of them:

- *category votes*: each of the first `voters` products (all `depth` when 0) votes for its
  categories with its similarity; each of the first `depth` products gains `category_weight`
  times the share of votes its own categories won, so the kind the nearest neighbours agree on
  comes first. With one voter, the nearest product's kind comes first and it stays first.
  A catch-all bin (`CATCH_ALL`: IKEA's `other`, half its catalog) is no kind: with `kinds_only`
  it neither votes nor gains, so a page whose nearest product is in it keeps the similarity
  order instead of filling up with unrelated members of the bin;
- *alpha query expansion* (alpha-QE, Radenović et al.): the query vector is moved towards its
  `qe_top` nearest catalog vectors, weighted by similarity ** `qe_alpha`, and searched again.

Both are pure functions of plain data; the index applies them with the parameters its manifest
carries (`RerankParams`), so an index that says nothing is searched as before.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

MANIFEST_PREFIX = "rerank."  # Manifest.extra keys: rerank.depth, rerank.category_weight, ...
CATCH_ALL = frozenset({"other", "textile", ""})  # catalog bins that name no kind (IKEA's; none)


@dataclass(frozen=True)
class RerankParams:
    """How the second stage runs; the defaults switch it off."""

    depth: int = 0  # neighbours (products) that vote; 0 = no category votes
    category_weight: float = 0.0  # score added for a unanimous vote
    qe_top: int = 0  # catalog vectors averaged into the query; 0 = no expansion
    qe_alpha: float = 3.0  # weight of a neighbour = similarity ** alpha
    voters: int = 0  # the first products whose categories are voted for; 0 = all `depth`
    kinds_only: int = 0  # 1: catch-all bins (CATCH_ALL) neither vote nor gain

    @property
    def votes(self) -> bool:
        return self.depth > 1 and self.category_weight > 0

    @property
    def expands(self) -> bool:
        return self.qe_top > 0

    def kinds(self, categories: Sequence[str]) -> tuple[str, ...]:
        """The categories of a product that take part in the vote."""
        if not self.kinds_only:
            return tuple(categories)
        return tuple(c for c in categories if c not in CATCH_ALL)

    def candidates(self, k: int) -> int:
        """How many first-stage products the second stage needs to rank `k`."""
        return max(k, self.depth) if self.votes else k

    def to_manifest(self) -> dict[str, float | int]:
        """Flat `rerank.<field>` entries for `Manifest.extra`."""
        return {f"{MANIFEST_PREFIX}{key}": value for key, value in asdict(self).items()}

    @classmethod
    def from_manifest(cls, extra: dict[str, object]) -> "RerankParams":
        """Parameters from `Manifest.extra`; an index built before them searches as before."""
        types = {f.name: f.type for f in fields(cls)}
        found = {
            name: (int if kind in (int, "int") else float)(extra[f"{MANIFEST_PREFIX}{name}"])
            for name, kind in types.items()
            if f"{MANIFEST_PREFIX}{name}" in extra
        }
        return cls(**found)


def category_vote_scores(
    scores: Sequence[float], labels: Sequence[Sequence[str]], weight: float, voters: int = 0
) -> np.ndarray:
    """(N,) second-stage scores: similarity + weight × the vote share of the item's categories."""
    similarity = np.asarray(scores, dtype=np.float64)  # (N,)
    return similarity + weight * vote_shares(similarity, labels, voters)


def vote_shares(
    scores: Sequence[float], labels: Sequence[Sequence[str]], voters: int = 0
) -> np.ndarray:
    """(N,) the share of the votes each item's categories won.

    The first `voters` items (all when 0) vote, weighted by similarity; an item with several
    categories takes its best one.
    """
    similarity = np.asarray(scores, dtype=np.float64)  # (N,)
    if similarity.size == 0:
        return similarity
    ballot: dict[str, float] = defaultdict(float)
    voting = slice(0, voters or None)
    for score, categories in zip(similarity[voting], labels[voting], strict=True):
        for category in set(categories):
            ballot[category] += max(float(score), 0.0)
    total = sum(ballot.values()) or 1.0
    return np.array(
        [max((ballot[c] for c in categories), default=0.0) / total for categories in labels]
    )


def vote_order(
    scores: Sequence[float], labels: Sequence[Sequence[str]], weight: float, voters: int = 0
) -> list[int]:
    """Indices of the items, best first after the category vote (stable for ties)."""
    combined = category_vote_scores(scores, labels, weight, voters)
    return sorted(range(len(combined)), key=lambda i: (-combined[i], i))


def staged(
    best: list[tuple[int, float]],
    categories_of: Callable[[int], Sequence[str]],
    stage: RerankParams,
) -> list[tuple[int, float]]:
    """(product row, score) pairs, best first, after the category vote over the first `depth`
    only: a deeper page keeps the order the first pages showed."""
    if not stage.votes:
        return best
    head, tail = best[: stage.depth], best[stage.depth :]
    labels = [stage.kinds(categories_of(row)) for row, _ in head]
    order = vote_order([s for _, s in head], labels, stage.category_weight, stage.voters)
    return [head[i] for i in order] + tail


def grouped(
    best: list[tuple[int, float]],
    categories_of: Callable[[int], Sequence[str]],
    stage: RerankParams,
) -> list[tuple[int, float]]:
    """As `staged`, for (product row, cosine) pairs already ordered by a score of their own (a
    room object's hub-corrected margin): the vote moves the better-voted kinds ahead, and
    within one kind the given order stays."""
    if not stage.votes:
        return best
    head, tail = best[: stage.depth], best[stage.depth :]
    labels = [stage.kinds(categories_of(row)) for row, _ in head]
    shares = vote_shares([s for _, s in head], labels, stage.voters)
    order = sorted(range(len(head)), key=lambda i: (-shares[i], i))
    return [head[i] for i in order] + tail


def led_by(
    best: list[tuple[int, float]],
    categories_of: Callable[[int], Sequence[str]],
    kind: str,
    depth: int,
) -> list[tuple[int, float]]:
    """`best` with the products of `kind` among its first `depth` moved ahead, each side in
    its given order."""
    head, tail = best[:depth], best[depth:]
    return sorted(head, key=lambda pair: kind not in categories_of(pair[0])) + tail


def expand_query(
    query: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray, alpha: float
) -> np.ndarray:
    """(D,) unit vector: the query plus its (M, D) neighbours weighted by similarity ** alpha."""
    weights = np.clip(np.asarray(similarities, dtype=np.float32), 0.0, None) ** alpha  # (M,)
    expanded = query.astype(np.float32) + weights @ neighbours.astype(np.float32)  # (D,)
    norm = float(np.linalg.norm(expanded))
    return expanded / norm if norm > 0 else query.astype(np.float32)


# What `snapfind index build` writes into new manifests: the nearest product's kind first among
# the first 30 (benchmarks/quality_bench.py, docs/quality.md, second pass: IKEA leave-one-out
# P@5 0.612 → 0.723 and wild P@5 0.718 → 0.786 at equal P@1 with efficientnet-lite0; votes of
# several neighbours, alpha-QE, d50 and a category classifier lost or tied there), catch-all
# bins left out of the vote (eighth pass there).
DEFAULT = RerankParams(depth=30, category_weight=1.0, voters=1, kinds_only=1)
