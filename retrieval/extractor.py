"""Images → L2-normalised feature vectors: one extractor for catalog and queries alike."""

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.backbones import Backbone, get_backbone
from retrieval.errors import ConfigError
from retrieval.head import ProjectionHead
from retrieval.resize import to_square

RANDOM_SEED = 1234  # weights "none" are seeded, so two processes build the same random network


@dataclass(frozen=True)
class Fingerprint:
    """What made a vector; vectors from different fingerprints must never be compared."""

    backbone: str
    weights_id: str
    input_size: int
    dim: int
    head: str = ""  # id of the tuned head applied after the backbone; "" = none

    def key(self) -> str:
        """A short stable id, fit for file names."""
        text = f"{self.backbone}|{self.weights_id}|{self.input_size}|{self.dim}"
        text += f"|{self.head}" if self.head else ""  # keys of head-less vectors stay as they were
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(backbone: Backbone, weights: str) -> tuple[str | None, str]:
    """(argument for the builder, identity for the fingerprint) from a weights setting."""
    choice = weights.strip()
    if choice.lower() == "none":
        return None, f"none:seed{RANDOM_SEED}"
    if choice.lower() == "imagenet":
        if backbone.packaged_weights is not None:  # shipped file: its hash tells versions apart
            packaged = backbone.packaged_weights
            return str(packaged), f"imagenet:sha256:{file_sha256(packaged)[:16]}"
        return "imagenet", "imagenet"
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path}")
    return str(path.resolve()), f"sha256:{file_sha256(path)[:16]}"


class Extractor:
    """A headless backbone compiled once; `embed` for catalogs, `embed_one` for queries.

    Calls are serialised by a lock: on a small CPU one inference at a time is fastest, and
    Keras models are not meant to be entered by two threads at once.
    """

    def __init__(
        self,
        backbone: str = "efficientnetb7",
        weights: str = "imagenet",
        input_size: int | None = None,
        head: ProjectionHead | None = None,
    ) -> None:
        self.backbone = get_backbone(backbone)
        size = input_size or self.backbone.input_size
        if size < self.backbone.min_size:
            raise ConfigError(
                f"{self.backbone.name} needs inputs of at least "
                f"{self.backbone.min_size} px, not {size}"
            )
        weights_arg, weights_id = resolve_weights(self.backbone, weights)
        self.model = self._build(weights_arg, size)
        self.model_name: str = self.model.name
        self.param_count: int = int(self.model.count_params())
        dim = int(self.model.output_shape[-1])
        self.head = head
        if head is not None and head.residual.shape[0] != dim:
            raise ConfigError(f"tuned head expects {head.residual.shape[0]} features, not {dim}")
        head_id = head.head_id if head is not None else ""
        self.fingerprint = Fingerprint(self.backbone.name, weights_id, size, dim, head_id)
        self._forward = self._compile()
        self._lock = threading.Lock()

    def _build(self, weights: str | None, size: int) -> "object":
        import keras

        if weights is None:
            keras.utils.set_random_seed(RANDOM_SEED)
        try:
            return self.backbone.build(weights, size)
        except Exception as error:  # Keras reports a failed weights download as a bare Exception
            raise ConfigError(
                f"could not load {weights!r} weights for {self.backbone.name}: {error}. "
                "Offline? Point SNAPFIND_WEIGHTS at a local weights file."
            ) from None

    def _compile(self):
        import tensorflow as tf

        model, size = self.model, self.fingerprint.input_size

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def forward(batch: tf.Tensor) -> tf.Tensor:
            features = model(batch, training=False)  # (N, D)
            return tf.math.l2_normalize(features, axis=1)

        return forward

    @property
    def input_size(self) -> int:
        return self.fingerprint.input_size

    def prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 images → (N, S, S, 3) float32 model input."""
        size = self.input_size
        batch = np.stack([to_square(image, size) for image in images]).astype(np.float32)
        return self.backbone.preprocess(batch)

    def embed(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(N, D) float32 unit vectors, one row per image."""
        if not images:
            return np.zeros((0, self.fingerprint.dim), dtype=np.float32)
        parts = [
            self.embed_prepared(self.prepare(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts)

    def embed_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Run the network (and the tuned head, if any) on a prepared (N, S, S, 3) batch."""
        with self._lock:
            features = self._forward(batch).numpy().astype(np.float32, copy=False)  # (N, D)
        return features if self.head is None else self.head.apply(features)

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """(D,) unit vector of one image."""
        return self.embed([image])[0]

    def warmup(self) -> float:
        """Trace and run the network once at the exact query shape; returns the seconds it took."""
        started = time.perf_counter()
        blank = np.full((self.input_size, self.input_size, 3), 255, dtype=np.uint8)
        self.embed_one(blank)
        return time.perf_counter() - started
