"""`snapfind tune`: learn the light head (retrieval/head.py) from the catalog itself.

Every catalog picture is turned into shopper-like views (index/shopper_augment.py); tables and
beds also into furnished views (among catalog chairs, beside nightstands). Two heads: the
*kind head* (index/category_head.py; `snapfind tune`'s default) learns the catalog's categories
from these views, by supervised contrastive loss; the *identity head* is trained so that a
view's vector finds its own picture among all catalog pictures (InfoNCE over a residual linear
map of the frozen backbone's unit features), optionally pulling one category together. A share
of the pictures is held out of training, and the head is judged on those: their views must
still find their own picture first, so the figure is not a memory test. Backbone features of
the clean pictures come from the index build's cache; those of the views (shopper and
furnished) are cached as .npy beside it, so a re-run trains in seconds.
"""

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.build import CACHE
from index.catalog import CatalogEntry, load_catalog, unique_pictures
from index.category_head import CategoryHeadOptions, residual_of, train_kind_map
from index.shopper_augment import SCENES, furnished_view, pick_companions, shopper_view
from index.vector_cache import VectorCache
from retrieval.bounded_read import read_image_file
from retrieval.errors import ConfigError, ImageError, SnapfindError
from retrieval.extractor import Extractor
from retrieval.head import HEAD_FILE, ProjectionHead
from retrieval.limits import DEFAULT_LIMITS
from retrieval.model_input import decode_for_model

log = logging.getLogger(__name__)

FEWEST_PICTURES = 10  # readable catalog pictures tuning needs
MAX_VIEWS = 16  # shopper-like views per picture: each is embedded and held for every picture


@dataclass(frozen=True)
class TuneOptions:
    """How the head is trained."""

    views: int = 1  # shopper-like views per catalog picture
    seed: int = 0
    holdout: float = 0.3  # share of pictures never trained on, judged after training
    steps: int = 300
    batch: int = 512
    learning_rate: float = 1e-3
    temperature: float = 0.05
    decay: float = 1e-3  # pulls the residual towards zero, i.e. towards the plain backbone
    category_weight: float = 0.0  # weight of the same-category term
    progress: bool = True
    kinds: CategoryHeadOptions | None = None  # train the kind head instead (category_head.py)
    scenes: int = 0  # furnished views (a table among chairs...) per picture with a scene

    def __post_init__(self) -> None:
        """Refuse what cannot train or be judged, before any picture is read."""
        if not 1 <= self.views <= MAX_VIEWS:
            raise ConfigError(f"views must be 1 to {MAX_VIEWS} (got {self.views})")
        if not 0 < self.holdout < 1:
            raise ConfigError(
                f"holdout must be a share between 0 and 1, both excluded (got {self.holdout})"
            )
        if self.steps < 0:
            raise ConfigError(f"steps must be 0 or more (got {self.steps})")
        if self.scenes < 0:
            raise ConfigError(f"scenes must be 0 or more (got {self.scenes})")


@dataclass(frozen=True)
class TuneReport:
    """What a tuning run did and how the held-out pictures fared."""

    head: Path
    trained: int  # pictures trained on
    held_out: int
    unreadable: int  # catalog pictures left out: they cannot be decoded
    feature_seconds: float
    train_seconds: float
    recall_before: float  # held-out views finding their own picture first, plain backbone
    recall_after: float  # the same with the head
    category_before: float  # held-out views whose nearest picture has their category
    category_after: float


def tune(
    catalog: Path, index_dir: Path, extractor: Extractor, options: TuneOptions | None = None
) -> TuneReport:
    """Train the head on `catalog`'s pictures and save it as `index_dir/head.npz`."""
    options = options or TuneOptions()
    if extractor.head is not None:
        raise ConfigError("tune from the plain backbone: move the old head.npz away first")
    listed = unique_pictures(load_catalog(catalog).entries)
    _split(listed, options.holdout, catalog)  # refused before anything is read or written
    index_dir = Path(index_dir)
    started = time.perf_counter()
    entries, clean = _clean_features(listed, index_dir, extractor, options)  # readable; (P, D)
    held = _split(entries, options.holdout, catalog)  # (P,) bool, the unreadable left out
    views = [
        _view_features(entries, index_dir, extractor, options, v) for v in range(options.views)
    ]
    furnished = [
        _furnished_features(entries, index_dir, extractor, options, v, ~held)
        for v in range(options.scenes if options.kinds is not None else 0)
    ]
    feature_seconds = time.perf_counter() - started
    labels = _category_ids(entries)  # (P,)
    started = time.perf_counter()
    if options.kinds is not None:
        residual = _kind_residual(clean, views, furnished, entries, ~held, options.kinds)
    else:
        residual = train_residual(
            np.concatenate([v[~held] for v in views]),
            np.tile(np.flatnonzero(~held), options.views),  # each view's own picture
            clean,
            labels,
            options,
        )
    train_seconds = time.perf_counter() - started
    head = ProjectionHead.from_array(residual, extractor.fingerprint.network)
    held_views = np.concatenate([v[held] for v in views])
    held_rows = np.tile(np.flatnonzero(held), options.views)
    identity = ProjectionHead.from_array(np.zeros_like(residual))
    before = judge(identity, held_views, held_rows, clean, labels)
    after = judge(head, held_views, held_rows, clean, labels)
    path = index_dir / HEAD_FILE
    index_dir.mkdir(parents=True, exist_ok=True)
    head.save(path)
    return TuneReport(
        head=path,
        trained=int((~held).sum()),
        held_out=int(held.sum()),
        unreadable=len(listed) - len(entries),
        feature_seconds=feature_seconds,
        train_seconds=train_seconds,
        recall_before=before[0],
        recall_after=after[0],
        category_before=before[1],
        category_after=after[1],
    )


def train_residual(
    views: np.ndarray,
    rows: np.ndarray,
    clean: np.ndarray,
    labels: np.ndarray,
    options: TuneOptions,
) -> np.ndarray:
    """(D, D) residual: (N, D) views should find row `rows[i]` of the (P, D) clean pictures.

    Only the clean pictures of trained views are candidates, so held-out pictures stay unseen.
    """
    import tensorflow as tf

    trained = np.unique(rows)
    position = {row: i for i, row in enumerate(trained)}
    targets = np.array([position[row] for row in rows])  # (N,) index into `trained`
    candidates = tf.constant(clean[trained])  # (T, D)
    same_kind = tf.constant(labels[trained][:, None] == labels[trained][None, :], tf.float32)
    residual = tf.Variable(tf.zeros((clean.shape[1], clean.shape[1])))
    optimizer = tf.keras.optimizers.Adam(options.learning_rate)
    rng = np.random.default_rng(options.seed)

    def project(x: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(x + x @ residual, axis=1)

    @tf.function
    def step(batch: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = project(batch) @ tf.transpose(project(candidates)) / options.temperature
            identity = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)
            )
            kind = tf.gather(same_kind, target)  # (B, T) pictures of the view's category
            log_p = tf.nn.log_softmax(logits, axis=1)
            category = -tf.reduce_mean(tf.reduce_sum(kind * log_p, 1) / tf.reduce_sum(kind, 1))
            loss = identity + options.category_weight * category
            loss += options.decay * tf.reduce_sum(tf.square(residual))
        optimizer.apply_gradients([(tape.gradient(loss, residual), residual)])
        return loss

    bar = tqdm(range(options.steps), desc="training", unit="step", disable=not options.progress)
    for _ in bar:
        pick = rng.choice(len(views), size=min(options.batch, len(views)), replace=False)
        loss = step(tf.constant(views[pick]), tf.constant(targets[pick]))
        bar.set_postfix(loss=f"{float(loss):.3f}")
    return residual.numpy()


def _kind_residual(
    clean: np.ndarray,
    views: list[np.ndarray],
    furnished: list[tuple[np.ndarray, np.ndarray]],
    entries: list[CatalogEntry],
    trained: np.ndarray,
    options: CategoryHeadOptions,
) -> np.ndarray:
    """The kind head's residual, learnt from the trained pictures' clean vectors, their
    shopper views and their furnished views (rows, vectors)."""
    names = np.array([e.kind for e in entries])
    rows = [np.flatnonzero(trained)] * (1 + len(views)) + [r for r, _ in furnished]
    features = [clean[trained]] + [v[trained] for v in views] + [f for _, f in furnished]
    every = np.concatenate(rows)
    kind_map = train_kind_map(np.concatenate(features), names[every], every, options)
    return residual_of(kind_map, options.strength)


def judge(
    head: ProjectionHead, views: np.ndarray, rows: np.ndarray, clean: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """(own picture first, nearest picture of the own category) rates of (N, D) views."""
    if len(views) == 0:
        return float("nan"), float("nan")
    nearest = np.argmax(head.apply(views) @ head.apply(clean).T, axis=1)  # (N,)
    return float(np.mean(nearest == rows)), float(np.mean(labels[nearest] == labels[rows]))


def held_out(content_hash: str, share: float = TuneOptions.holdout) -> bool:
    """Whether tuning keeps this picture out of training: decided by its hash, so stable, and
    benchmarks can score the head on the very pictures it never saw."""
    return int(content_hash[:8], 16) % 1000 < share * 1000


def _split(entries: list[CatalogEntry], share: float, catalog: Path) -> np.ndarray:
    """(P,) True for pictures kept out of training; refuses a catalog too small to tune on, or
    a split that leaves nothing to train on or to judge on (a small catalog, an extreme share)."""
    if len(entries) < FEWEST_PICTURES:
        raise SnapfindError(
            f"catalog {catalog} has {len(entries)} distinct pictures; tuning needs at least "
            f"{FEWEST_PICTURES}: add pictures, or serve the catalog untuned"
        )
    held = np.array([held_out(e.content_hash, share) for e in entries])
    if held.all() or not held.any():
        side, fix = ("train on", "lower") if held.all() else ("judge on", "raise")
        raise ConfigError(
            f"holdout {share} leaves no picture to {side} among the {len(entries)} of "
            f"catalog {catalog}: {fix} it"
        )
    return held


def _category_ids(entries: list[CatalogEntry]) -> np.ndarray:
    names = sorted({e.kind for e in entries})
    return np.array([names.index(e.kind) for e in entries])


def _clean_features(
    entries: list[CatalogEntry], index_dir: Path, extractor: Extractor, options: TuneOptions
) -> tuple[list[CatalogEntry], np.ndarray]:
    """The readable pictures and their (P, D) plain backbone vectors, from (and into) the index
    build's vector cache. Readability is decided here, once: a picture that cannot be decoded
    is left out with a warning (as `index build` leaves it out), so no view is made of it."""
    cache = VectorCache(index_dir / CACHE, extractor.fingerprint)
    failures: list[str] = []
    try:
        found = cache.get_many(e.content_hash for e in entries)
        todo = [e for e in entries if e.content_hash not in found]
        for start in tqdm(
            range(0, len(todo), 16), desc="catalog", unit="batch", disable=not options.progress
        ):
            images = {}
            for entry in todo[start : start + 16]:
                try:
                    images[entry.content_hash] = _decoded(entry, extractor)
                except SnapfindError as error:
                    failures.append(str(error))
            if images:
                fresh = dict(zip(images, extractor.embed(list(images.values())), strict=True))
                cache.put_many(fresh)
                found.update(fresh)
    finally:
        cache.close()
    if failures:
        log.warning(
            "left out %d of %d catalog pictures that cannot be read, e.g. %s",
            len(failures),
            len(entries),
            failures[0],
        )
    readable = [e for e in entries if e.content_hash in found]
    vectors = [found[e.content_hash] for e in readable]
    return readable, np.stack(vectors) if vectors else np.zeros((0, extractor.fingerprint.dim))


def _view_features(
    entries: list[CatalogEntry],
    index_dir: Path,
    extractor: Extractor,
    options: TuneOptions,
    view: int,
) -> np.ndarray:
    """(P, D) backbone vectors of one shopper-like view per picture, cached as .npy."""
    stem = index_dir / CACHE / f"tune-{extractor.fingerprint.key()}-s{options.seed}-v{view}"
    hashes = [e.content_hash for e in entries]
    stored = _read_views(stem)
    if stored is not None:
        cached = dict(zip(*stored, strict=True))  # any superset of the pictures will do
        if all(h in cached for h in hashes):
            return np.stack([cached[h] for h in hashes])
    parts = []
    for start in tqdm(
        range(0, len(entries), 16), desc=f"views {view}", unit="batch", disable=not options.progress
    ):
        batch = entries[start : start + 16]
        images = [
            shopper_view(_decoded(e, extractor), options.seed, e.content_hash, view) for e in batch
        ]
        parts.append(extractor.embed(images))
    vectors = np.concatenate(parts)
    _write_views(stem, hashes, vectors)
    return vectors


def _furnished_features(
    entries: list[CatalogEntry],
    index_dir: Path,
    extractor: Extractor,
    options: TuneOptions,
    view: int,
    trained: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, (R, D) vectors): one furnished view (shopper_augment.SCENES) of each trained
    picture whose category has a scene, its companions drawn from the trained pictures only;
    cached as .npy like the shopper views, keyed by each view's picture and its companions, so
    a changed pool (pictures added, unreadable or moved to the held-out side) makes them anew."""
    pools: dict[str, list[str]] = {}
    by_hash = {e.content_hash: e for e in entries}
    for entry, keep in zip(entries, trained, strict=True):
        if keep:
            pools.setdefault(entry.kind, []).append(entry.content_hash)
    rows = [
        i
        for i, e in enumerate(entries)
        if trained[i] and e.kind in SCENES and pools.get(SCENES[e.kind].companion)
    ]
    keys = []  # [picture, *companions] of each view
    for row in rows:
        entry = entries[row]
        scene = SCENES[entry.kind]
        company = pick_companions(
            pools[scene.companion], scene, (options.seed, entry.content_hash, view)
        )
        keys.append([entry.content_hash, *company])
    stem = index_dir / CACHE / f"tune-{extractor.fingerprint.key()}-s{options.seed}-f{view}"
    stored = _read_views(stem)
    if stored is not None and stored[0] == keys:
        return np.array(rows, dtype=np.int64), stored[1]
    parts = []
    for start in tqdm(
        range(0, len(rows), 16), desc=f"scenes {view}", unit="batch", disable=not options.progress
    ):
        images = []
        for row, (_, *company) in zip(
            rows[start : start + 16], keys[start : start + 16], strict=True
        ):
            entry = entries[row]
            scene = SCENES[entry.kind]
            others = [_decoded(by_hash[h], extractor) for h in company]
            key = (options.seed, entry.content_hash, view)
            images.append(furnished_view(_decoded(entry, extractor), others, scene, key))
        parts.append(extractor.embed(images))
    vectors = np.concatenate(parts) if parts else np.zeros((0, extractor.fingerprint.dim))
    vectors = vectors.astype(np.float32)
    _write_views(stem, keys, vectors)
    return np.array(rows, dtype=np.int64), vectors


def _read_views(stem: Path) -> tuple[list, np.ndarray] | None:
    """(keys, vectors) of a view cache (`stem`.json, `stem`.npy), or None when either is
    missing, damaged or of another length: the views are then simply made again."""
    try:
        keys = json.loads(stem.with_suffix(".json").read_text())
        vectors = np.load(stem.with_suffix(".npy"))
    except (OSError, ValueError, EOFError):
        return None
    whole = isinstance(keys, list) and vectors.ndim == 2 and len(keys) == len(vectors)
    return (keys, vectors) if whole else None


def _write_views(stem: Path, keys: list, vectors: np.ndarray) -> None:
    """Save a view cache so that its keys never describe other vectors: the old keys go first,
    the new ones last, and a run stopped in between finds no keys, so no cache."""
    keys_file = stem.with_suffix(".json")
    stem.parent.mkdir(parents=True, exist_ok=True)
    keys_file.unlink(missing_ok=True)
    np.save(stem.with_suffix(".npy"), vectors)
    keys_file.write_text(json.dumps(keys))


def _decoded(entry: CatalogEntry, extractor: Extractor) -> np.ndarray:
    """A catalog picture as the product decodes it (bounded read, the same decoding)."""
    try:
        data = read_image_file(entry.image, DEFAULT_LIMITS.max_bytes)
        return decode_for_model(data, extractor.input_size)
    except (ImageError, OSError) as error:
        raise SnapfindError(f"cannot read catalog image {entry.image}: {error}") from None
