"""Images → L2-normalised feature vectors: one extractor for catalog and queries alike."""

import hashlib
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.backbones import OFFLINE_BACKBONE, Backbone, get_backbone
from retrieval.embedder import Embedder
from retrieval.errors import ConfigError, WeightsUnavailableError
from retrieval.head import ProjectionHead
from retrieval.weights_choice import parse_weights

RANDOM_SEED = 1234  # weights "none" are seeded, so two processes build the same random network
TINY_SQUARED_NORM = 1e-30  # below any squared norm of real features; above float32's smallest


@dataclass(frozen=True)
class Fingerprint:
    """What made a vector; vectors from different fingerprints must never be compared."""

    backbone: str
    weights_id: str
    input_size: int
    dim: int
    head: str = ""  # id of the tuned head applied after the backbone; "" = none

    @property
    def network(self) -> str:
        """The network alone (backbone, weights, input size, dim), without any head: what a
        tuned head was trained on and may only be applied to."""
        return f"{self.backbone}|{self.weights_id}|{self.input_size}|{self.dim}"

    def key(self) -> str:
        """A short stable id, fit for file names."""
        text = self.network
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
    choice = parse_weights(weights)
    if choice == "none":
        return None, f"none:seed{RANDOM_SEED}"
    if choice == "imagenet":
        if backbone.packaged_weights is not None:  # shipped file: its hash tells versions apart
            packaged = backbone.packaged_weights
            return str(packaged), f"imagenet:sha256:{file_sha256(packaged)[:16]}"
        return "imagenet", "imagenet"
    return choice, f"sha256:{file_sha256(Path(choice))[:16]}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")


class Extractor(Embedder):
    """A headless Keras backbone compiled once; `embed` for catalogs, `embed_one` for queries.

    The source of truth: `retrieval.runtime_export` exports it to a file that serves without
    TensorFlow.
    """

    runtime_id = "keras"

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
        self.fingerprint = Fingerprint(self.backbone.name, weights_id, size, dim)
        if head is not None:
            self.attach_head(head)
        self._forward = self._compile()
        self._lock = threading.Lock()

    def _build(self, weights: str | None, size: int) -> "object":
        """The Keras network with `weights`; a file that does not fit it is one line.

        Keras explains a weights file of another network in a message of ~200 lines (tensor
        values, every layer it skipped) after one warning per layer: the warnings are shown
        only if the network builds, and the message is cut to its first line.
        """
        import keras

        if weights is None:
            keras.utils.set_random_seed(RANDOM_SEED)
        try:
            with warnings.catch_warnings(record=True) as caught:
                model = self.backbone.build(weights, size)
        except Exception as error:  # Keras reports a failed weights download as a bare Exception
            if weights != "imagenet":
                raise ConfigError(
                    f"could not load weights {weights!r} for {self.backbone.name}: "
                    f"{_first_line(error)} (is it a weights file of {self.backbone.name}?)"
                ) from None
            raise WeightsUnavailableError(
                f"could not download the ImageNet weights of {self.backbone.name} "
                f"({_first_line(error)}). "
                f"Offline? Use {OFFLINE_BACKBONE}, whose weights ship with snapfind "
                f"(SNAPFIND_BACKBONE={OFFLINE_BACKBONE} or --backbone {OFFLINE_BACKBONE}), "
                "or point SNAPFIND_WEIGHTS at a local weights file"
            ) from None
        for warning in caught:  # the network built: its warnings are news
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        return model

    def _compile(self):
        import tensorflow as tf

        model, size = self.model, self.fingerprint.input_size

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def forward(batch: tf.Tensor) -> tf.Tensor:
            features = model(batch, training=False)  # (N, D)
            # a tiny epsilon: seeded random Lite weights give features near 1e-11, whose squared
            # sum is under the default 1e-12, so they stayed far from unit length
            return tf.math.l2_normalize(features, axis=1, epsilon=TINY_SQUARED_NORM)

        return forward

    def embed_backbone(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a prepared (N, S, S, 3) batch."""
        with self._lock:
            return self._forward(batch).numpy().astype(np.float32, copy=False)  # (N, D)
