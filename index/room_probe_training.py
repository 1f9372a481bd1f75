"""Build step for the object step: learns from the catalog how a room photo differs from a photo
of one piece.

Boxes and an object's album suit a room; a shopper's photo of one sofa in a café is answered
better by the photo itself. On the 246 in-the-wild photos (one piece each, most not on white)
the first album's precision@5 was 0.70 for the whole photo against 0.34 for the object finder's
first object, and 190 of those photos got five objects (docs/objects.md, seventh pass). No
photos of either kind ship with a catalog, so the probe learns from the catalog's own: the
pseudo-rooms' scene vectors against one shopper view (index/shopper_augment.py) of as
many catalog pictures and, where the catalog has beds and nightstands, furnished views of a bed
between its nightstands (what most shoppers' photos the probe first called rooms showed); a
logistic regression on the vectors the query's probe gets (the map's mean, before any head).
"""

from collections.abc import Iterator
from itertools import chain

import numpy as np
from tqdm import tqdm

from index.pseudo_rooms import CatalogPictures, PseudoRooms
from index.shopper_augment import SCENES, furnished_view, shopper_view
from retrieval.regions import RegionEncoder

L2 = 0.03  # on standardised features (screened: 0.01–0.1 alike, 1.0 lost; docs/objects.md)
STEPS = 2000
LEARNING_RATE = 0.5
# furnished views of one piece per scene the catalog has, per pseudo-room (40 for the default
# draw's 150: the screened setting), so a small catalog's few rooms are not outweighed
FURNISHED_PER_ROOM = 0.27
# The furnished scenes (shopper_augment.SCENES) a shopper means as one piece: a bed with its
# nightstands is a photo of the bed. A dining set is a table and chairs, each bought on its
# own: it keeps its boxes, and a table first (served tables on the five classes 0.589 -> 0.621,
# docs/objects.md, eighth pass).
ONE_PIECE_SCENES = ("bed",)


def train_room_probe(
    encoder: RegionEncoder,
    rooms: PseudoRooms,
    pictures: CatalogPictures,
    seed: int,
    progress: bool = False,
) -> np.ndarray:
    """(D + 1,) float32: the weights, then the bias; a scene vector scoring above 0 shows
    a room. The pieces: one shopper view of each of as many random pictures as there are
    rooms, then the furnished views, drawn with `seed`; one region pass each (`progress`)."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(pictures), len(rooms.scenes))
    shopper = (
        shopper_view(pictures.read(int(v)), seed, str(v), view) for view, v in enumerate(chosen)
    )
    count = int(len(rooms.scenes) * FURNISHED_PER_ROOM)
    furnished = list(furnished_pieces(pictures, count, rng, seed))  # tens of pictures
    views = tqdm(
        chain(shopper, furnished),
        total=len(chosen) + len(furnished),
        desc="room probe",
        unit="view",
        disable=not progress,
    )
    pieces = [encoder.regions(view).scene for view in views]
    features = np.concatenate([np.array(pieces, np.float32), rooms.scenes])
    labels = np.repeat([0.0, 1.0], [len(pieces), len(rooms.scenes)])
    return fit_logistic(features, labels)


def furnished_pieces(
    pictures: CatalogPictures, count: int, rng: np.random.Generator, seed: int
) -> Iterator[np.ndarray]:
    """`count` furnished views for each of ONE_PIECE_SCENES whose product and companion
    categories the catalog has; none for a catalog without them.

    Without them the probe called 61 of the 192 in-the-wild photos not on white rooms (29 beds
    beside nightstands) and sent their first object's album instead of the photo's; with them,
    over six training draws, 36 (docs/objects.md, eighth pass)."""
    kinds = np.array(pictures.kinds or [""] * len(pictures))
    for category in ONE_PIECE_SCENES:
        scene = SCENES[category]
        products = np.flatnonzero(kinds == category)
        companions = np.flatnonzero(kinds == scene.companion)
        if not products.size or not companions.size:
            continue
        for view, v in enumerate(rng.choice(products, count)):
            size = min(companions.size, int(rng.integers(scene.fewest, scene.most + 1)))
            company = [pictures.read(int(c)) for c in rng.choice(companions, size, replace=False)]
            yield furnished_view(pictures.read(int(v)), company, scene, (seed, str(v), view))


def fit_logistic(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, D) features, (N,) 0/1 labels → (D + 1,) float32 weights then bias of an L2-regularised
    logistic regression, fitted by gradient descent on standardised features (the scales of
    CNN features differ by orders of magnitude), then folded back to the raw features."""
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    standard = (features - mean) / scale
    weights, bias = np.zeros(features.shape[1]), 0.0
    for _ in range(STEPS):
        error = 1 / (1 + np.exp(-(standard @ weights + bias))) - labels  # (N,)
        weights -= LEARNING_RATE * (standard.T @ error / len(labels) + L2 * weights)
        bias -= LEARNING_RATE * error.mean()
    raw = weights / scale
    return np.append(raw, bias - mean @ raw).astype(np.float32)
