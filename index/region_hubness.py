"""Build step for the object finder: how much each catalog picture resembles *any* piece of a room.

A box cut from a room photo is, to a CNN, "indoor scene" first and "sofa" second, so a few
busy catalog pictures (a shelf full of things, a bunk bed with a desk under it) come up for
every room: hubs. CSLS (Conneau et al., 2018) corrects this with each catalog vector's hubness,
its mean cosine to its K nearest *reference regions*; a match then scores 2·cos − hubness.

The reference must look like what queries look like — pieces of rooms — yet come from the
shop's own catalog: boxes of pseudo-rooms (index/pseudo_rooms.py), where a product's own pasted
photo never counts for it. rooms_bench (docs/objects.md): this reference beats boxes of plain
catalog photos and no reference at all.
"""

from collections.abc import Iterable

import numpy as np

from index.pseudo_rooms import PseudoRooms

HUBNESS_K = 20  # nearest reference regions averaged per catalog vector
BLOCK = 2048  # catalog vectors scored against the reference at a time


def region_hubness(
    chunks: Iterable[np.ndarray], owners: np.ndarray, rooms: PseudoRooms
) -> np.ndarray:
    """(P,) float32: each catalog vector's mean cosine to its K nearest regions of the rooms its
    product is not in (fewer where fewer are left). `chunks`: the whole pictures' (c, D) vectors
    in order, a chunk at a time (a million pictures' vectors are never all in memory; a matrix
    at hand is `[matrix]`); `owners`: (P,) their products.

    A picture pasted into every room used (most of a catalog under ~10 pictures) has no
    reference: it gets the others' mean, neither hub nor anti-hub (0 if none has one). Its own
    regions must never count as its hubness: at −1 it would win every box of a room photo."""
    used = max(1, len(owners) // 2)  # a small catalog's product stays out of most rooms
    regions, pasted = rooms.regions[:used], rooms.pasted[:used]
    reference = np.concatenate(regions)  # (M, D)
    room_of = np.repeat(np.arange(len(regions)), [len(r) for r in regions])  # (M,)
    k = min(HUBNESS_K, len(reference))
    hubness = np.empty(len(owners), dtype=np.float32)
    done = 0
    for chunk in chunks:
        for start in range(0, len(chunk), BLOCK):
            block = chunk[start : start + BLOCK] @ reference.T  # (c, M)
            rows = slice(done, done + len(block))
            for room, products in enumerate(pasted):
                inside = np.isin(owners[rows], list(products))  # (c,) its products are in it
                block[np.ix_(inside, room_of == room)] = -np.inf
            top = np.partition(block, block.shape[1] - k, axis=1)[:, -k:]  # unordered: a mean
            counted = np.isfinite(top)  # (c, k) regions outside its own rooms
            sums, counts = np.where(counted, top, 0.0).sum(axis=1), counted.sum(axis=1)
            hubness[rows] = np.divide(sums, counts, out=np.full(len(top), np.nan), where=counts > 0)
            done += len(block)
    if done != len(owners):
        raise ValueError(f"{done} vectors for {len(owners)} pictures")
    unmeasured = np.isnan(hubness)
    hubness[unmeasured] = hubness[~unmeasured].mean() if not unmeasured.all() else 0.0
    return hubness
