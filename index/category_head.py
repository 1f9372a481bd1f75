"""A head that adds what kind of furniture a picture shows to the backbone's vector.

The identity head (index/tune.py) teaches views to find their own picture; it does not tell a
table from the chairs around it, nor a bed from a sofa of the same colour. This one learns, by
supervised contrastive loss (Khosla et al. 2020) over the catalog's own categories, a small
(D, d) map W whose output is appended to the frozen unit vector x:

    y = normalise([x, x @ W])            similarity  x.x' + (x W).(x' W)

so the backbone's similarity is kept whole (an exact copy still finds its own picture) and
pictures of one kind are drawn together by the added dimensions. Negatives the model confuses
are weighted up (hardness `beta`, Robinson et al. 2021), and batches hold every category
equally, so the rare, confusable kinds (tables next to chairs, beds next to sofas) meet in
every step. A catch-all category (IKEA's `other`) has no kind: its pictures are positives only
of their own views.

It is served at a `strength` s < 1 ([x, s x @ W]: less kind, more of the exact picture), as
the residual head of retrieval/head.py: with (I + R)(I + R)^T = I + s^2 W W^T, i.e.
R = sqrtm(I + s^2 W W^T) - I, `x + x @ R` has the same norms and dot products as [x, s x @ W],
so the index, the search and the query cost are unchanged.
"""

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from retrieval.errors import ConfigError
from retrieval.rerank import CATCH_ALL

MAX_DIM = 1024  # added dimensions: W is (D, dim), and its training holds a batch × dim map


@dataclass(frozen=True)
class CategoryHeadOptions:
    """How the kind map W is trained."""

    dim: int = 64  # columns of W: the added dimensions
    steps: int = 400
    batch: int = 512
    learning_rate: float = 3e-3
    temperature: float = 0.1
    hardness: float = 1.0  # beta: negatives weighted by exp(beta * similarity); 0 = plain SupCon
    decay: float = 1e-3  # pulls W towards zero, i.e. towards the plain backbone
    strength: float = 0.3  # W is served scaled by this: less kind, more of the exact picture
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        """Refuse a map that cannot be trained, before any picture is read."""
        if not 1 <= self.dim <= MAX_DIM:
            raise ConfigError(f"kind dimensions must be 1 to {MAX_DIM} (got {self.dim})")
        if self.steps < 0:
            raise ConfigError(f"steps must be 0 or more (got {self.steps})")


def kind_labels(categories: np.ndarray, pictures: np.ndarray) -> np.ndarray:
    """(N,) int labels for SupCon: the category, or the picture itself for the catch-all."""
    names = sorted(set(categories.tolist()) - set(CATCH_ALL))
    own = {name: i for i, name in enumerate(names)}
    return np.array(
        [
            own[c] if c not in CATCH_ALL else len(names) + int(p)
            for c, p in zip(categories.tolist(), pictures.tolist(), strict=True)
        ]
    )


def train_kind_map(
    features: np.ndarray,
    categories: np.ndarray,
    pictures: np.ndarray,
    options: CategoryHeadOptions,
) -> np.ndarray:
    """(D, d) W from (N, D) unit features of catalog pictures (clean or shopper views), their
    (N,) category names and (N,) picture numbers, by hard-negative SupCon on
    normalise([x, x @ W]) over batches holding every category equally."""
    import tensorflow as tf

    rng = np.random.default_rng(options.seed)
    labels = kind_labels(categories, pictures)
    groups = [np.flatnonzero(categories == c) for c in np.unique(categories)]
    start = rng.normal(scale=0.01, size=(features.shape[1], options.dim)).astype(np.float32)
    kind_map = tf.Variable(start)
    optimizer = tf.keras.optimizers.Adam(options.learning_rate)

    @tf.function
    def step(batch: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            y = tf.math.l2_normalize(tf.concat([batch, batch @ kind_map], axis=1), axis=1)
            similarity = y @ tf.transpose(y)  # (B, B)
            size = tf.shape(batch)[0]
            others = 1.0 - tf.eye(size)
            positive = tf.cast(label[:, None] == label[None, :], tf.float32) * others
            negative = (1.0 - positive) * others
            hard = tf.stop_gradient(tf.exp(options.hardness * similarity) * negative)
            hard = hard / tf.maximum(tf.reduce_sum(hard, 1, keepdims=True), 1e-12)
            hard *= tf.reduce_sum(negative, 1, keepdims=True)  # mean weight 1 over negatives
            exp = tf.exp((similarity - 1.0) / options.temperature)
            denominator = tf.reduce_sum(exp * (positive + hard), 1)  # (B,)
            log_p = (similarity - 1.0) / options.temperature - tf.math.log(denominator[:, None])
            count = tf.reduce_sum(positive, 1)
            anchors = tf.cast(count > 0, tf.float32)
            per_anchor = -tf.reduce_sum(log_p * positive, 1) / tf.maximum(count, 1.0)
            loss = tf.reduce_sum(per_anchor * anchors) / tf.maximum(tf.reduce_sum(anchors), 1.0)
            loss += options.decay * tf.reduce_sum(tf.square(kind_map))
        optimizer.apply_gradients([(tape.gradient(loss, kind_map), kind_map)])
        return loss

    bar = tqdm(range(options.steps), desc="kinds", unit="step", disable=not options.progress)
    for _ in bar:
        pick = _balanced_batch(groups, options.batch, rng)
        loss = step(tf.constant(features[pick]), tf.constant(labels[pick]))
        bar.set_postfix(loss=f"{float(loss):.3f}")
    return kind_map.numpy()


def residual_of(kind_map: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """(D, D) symmetric R with (I + R)(I + R)^T = I + s^2 W W^T: the head's form of
    [x, s x @ W], s = `strength`."""
    scaled = kind_map.astype(np.float64) * strength
    left, singular, _ = np.linalg.svd(scaled, full_matrices=False)
    gains = np.sqrt(1.0 + singular**2) - 1.0  # (d,)
    return ((left * gains) @ left.T).astype(np.float32)


def _balanced_batch(groups: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    each = max(2, size // len(groups))
    return np.concatenate([rng.choice(g, size=each, replace=len(g) < each) for g in groups])
