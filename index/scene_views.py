"""Catalog pictures as shoppers photograph them where they stand: `index build --scenes N`.

A shopper photographs a dining table with its chairs pulled up, a bed between its nightstands;
the shop photographs each alone on white, so the photo lands nearer the catalog's chairs than
its tables. Each picture of a category that has a scene (`shopper_augment.SCENES`: a table,
a bed) is also indexed as `N` furnished views of it: the product among companions drawn from
the catalog's own readable pictures of the scene's companion category, then photographed as
the tuned head's training views are. They only add ways to find the product: search scores a
product at its best vector and gives it one slot, the whole picture stays its first vector,
and the "no match" threshold, the room references and a room photo's boxes read whole
pictures alone (retrieval/scene_views.py). docs/quality.md, thirteenth pass: wild tables
0.553 → 0.658 as served on five categories with the kind head, for 288 more vectors on the
full catalog.

A view is a pure function of (picture, view number, companions), so its vector is cached under
a key naming all three: a rebuild embeds only views whose picture or company changed.
"""

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.catalog import CatalogEntry
from index.embedding import ImageJob
from index.shopper_augment import SCENES, Scene, furnished_view, pick_companions

SCENE_VERSION = "scene1"  # names the arrangement in cache keys: a new one re-embeds them all
VIEWS = 2  # per picture by default (1, 2 and 4 screened alike: docs/quality.md)
MAX_VIEWS = 8
SEED = 0  # the views are the catalog's, not a draw: one seed, as `snapfind tune`'s default

Loader = Callable[[Path], np.ndarray]  # a catalog image's path → its pixels as the build decodes


def scene_jobs(
    kept: list[CatalogEntry], views: int, load: Loader
) -> list[tuple[CatalogEntry, ImageJob]]:
    """(entry, job) of every scene view an index of `kept` (readable entries, in vector order)
    holds: view 0 of each picture that has a scene, then view 1, ... (entries sharing a
    picture share its views' keys: embedded once)."""
    if not 0 <= views <= MAX_VIEWS:
        raise ValueError(f"scene views must be 0..{MAX_VIEWS}, not {views}")
    by_hash = {e.content_hash: e for e in reversed(kept)}  # a picture's first entry
    pools: dict[str, list[str]] = {}
    for entry in kept:  # each picture once, in catalog order
        pool = pools.setdefault(entry.kind, [])
        if entry.content_hash not in pool:
            pool.append(entry.content_hash)
    jobs = []
    for view in range(views):
        for entry in kept:
            scene = SCENES.get(entry.kind)
            pool = pools.get(scene.companion) if scene else None
            if not pool:
                continue
            picked = pick_companions(pool, scene, (SEED, entry.content_hash, view))
            company = [by_hash[h].image for h in picked]
            key = scene_key(entry.content_hash, view, picked)
            make = functools.partial(
                _arranged,
                entry.image,
                tuple(company),
                scene,
                (SEED, entry.content_hash, view),
                load,
            )
            jobs.append((entry, ImageJob(key, str(entry.image), make)))
    return jobs


def scene_key(content_hash: str, view: int, companions: list[str]) -> str:
    """The vector cache key of a picture's scene view with these companions."""
    company = hashlib.sha256(" ".join(companions).encode()).hexdigest()[:16]
    return f"{content_hash}:{SCENE_VERSION}-{view}-{company}"


def _arranged(
    image: Path, company: tuple[Path, ...], scene: Scene, key: tuple[int, str, int], load: Loader
) -> np.ndarray:
    """A scene view's pixels, loaded only when the embedding loop asks for them (memory)."""
    return furnished_view(load(image), [load(path) for path in company], scene, key)
