"""A tuned head and room photos: the whole photo takes the head, as a query does; boxes keep the
backbone's own similarity to the headed catalog (the kind head cost rooms their products)."""

import copy

import numpy as np

from retrieval.head import ProjectionHead
from retrieval.regions import region_encoder_for
from tests.synthetic import compose_room


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_boxes_rank_the_headed_catalog_as_the_backbone_does_and_the_whole_photo_takes_the_head(
    tiny_extractor,
) -> None:
    dim = tiny_extractor.fingerprint.dim
    residual = np.random.default_rng(5).normal(0, 0.05, (dim, dim)).astype(np.float32)
    head = ProjectionHead.from_array(residual)  # not symmetric: the transpose matters
    tuned = copy.copy(tiny_extractor)
    tuned.attach_head(head)
    plain_pass, tuned_pass = region_encoder_for(tiny_extractor), region_encoder_for(tuned)
    room, boxes = compose_room(("sofa", "lamp", "rug"))
    plain, seen = plain_pass.regions(room), tuned_pass.regions(room)

    matrix = np.eye(dim, dtype=np.float32) + residual
    np.testing.assert_allclose(seen.whole, _unit(plain.whole @ matrix), atol=1e-5)
    np.testing.assert_allclose(seen.scene, plain.whole, atol=1e-5)  # what the room probe judges
    np.testing.assert_allclose(plain.scene, plain.whole, atol=1e-6)
    # the object finder ranks every box in a small basis: the box map folded into it once
    basis = np.linalg.qr(np.random.default_rng(7).normal(size=(dim, 16)))[0].astype(np.float32)
    assert plain_pass.scoring_basis(basis) is basis
    np.testing.assert_allclose(
        seen.projected(tuned_pass.scoring_basis(basis)), _unit(seen.vectors() @ basis), atol=1e-5
    )

    catalog = _unit(np.random.default_rng(6).normal(size=(40, dim)).astype(np.float32))
    headed = head.apply(catalog)  # what the index holds
    norms = np.linalg.norm(catalog @ matrix, axis=1)  # each picture's length before the head's unit
    for box_vectors, plain_vectors in (
        (seen.vectors(), plain.vectors()),
        (
            tuned_pass.cut_out(room, list(boxes.values())),
            plain_pass.cut_out(room, list(boxes.values())),
        ),
    ):
        through_head = (box_vectors @ headed.T) * norms  # (n, 40)
        backbone = plain_vectors @ catalog.T
        scale = (through_head * backbone).sum(axis=1) / (backbone**2).sum(axis=1)  # (n,)
        assert (scale > 0).all()  # one positive scale per box: the backbone's ranking
        np.testing.assert_allclose(through_head, scale[:, None] * backbone, atol=1e-4)
