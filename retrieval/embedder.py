"""What every extractor shares, whatever runs the network: square resize, preprocessing, batching.

The Keras extractor and the exported runtime extractor differ only in `embed_backbone`, so the
catalog and the queries get the same resize and the same normalisation whichever one runs.
"""

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from retrieval.backbones import Backbone
from retrieval.errors import ConfigError
from retrieval.resize import to_square

if TYPE_CHECKING:  # extractor.py defines it and subclasses Embedder
    from retrieval.extractor import Fingerprint
    from retrieval.head import ProjectionHead


class Embedder:
    """Images → (N, D) unit vectors; subclasses set the attributes below and run the network.

    Calls of `embed_backbone` are serialised by `_lock`: on a small CPU one inference at a time
    is fastest, and neither Keras models nor LiteRT interpreters may be entered by two threads.
    """

    backbone: Backbone
    fingerprint: "Fingerprint"
    model_name: str  # the network that actually runs, recorded in index manifests
    param_count: int
    runtime_id: str  # what runs the network ("keras", "litert:sha256:…"), recorded in manifests
    _lock: threading.Lock

    head: "ProjectionHead | None" = None  # `snapfind tune`'s head, applied after the network

    def attach_head(self, head: "ProjectionHead") -> None:
        """Apply `head` after the network from now on; the fingerprint names it. A head
        trained on another network is refused (one whose file does not say is taken)."""
        if head.residual.shape[0] != self.fingerprint.dim:
            raise ConfigError(
                f"tuned head expects {head.residual.shape[0]} features, not {self.fingerprint.dim}"
            )
        if head.network and head.network != self.fingerprint.network:
            raise ConfigError(
                f"the tuned head was trained on {_named(head.network)}, not on "
                f"{_named(self.fingerprint.network)}: run `snapfind tune` again for this "
                "network, or move head.npz out of the index folder"
            )
        self.head = head
        self.fingerprint = replace(self.fingerprint, head=head.head_id)

    def apply_head(self, features: np.ndarray) -> np.ndarray:
        """(N, D) network vectors → what is indexed: the same, or through the tuned head."""
        return features if self.head is None else self.head.apply(features)

    @property
    def input_size(self) -> int:
        return self.fingerprint.input_size

    def prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 images → (N, S, S, 3) float32 model input."""
        size = self.input_size
        batch = np.stack([to_square(image, size) for image in images]).astype(np.float32)
        return self.backbone.preprocess(batch)

    def without_head(self) -> "Embedder":
        """The same network without the tuned head (itself when it has none), sharing the model
        and its lock: the index build caches its vectors, so a new head needs no re-embedding."""
        if self.head is None:
            return self
        plain = copy.copy(self)
        plain.head = None
        plain.fingerprint = replace(self.fingerprint, head="")
        return plain

    def embed_backbone(self, batch: np.ndarray) -> np.ndarray:
        """Run the network alone on a prepared (N, S, S, 3) batch → (N, D) float32 unit vectors."""
        raise NotImplementedError

    def embed_prepared(self, batch: np.ndarray) -> np.ndarray:
        """The network, then the tuned head if any, on a prepared batch → (N, D) unit vectors."""
        return self.apply_head(self.embed_backbone(batch))

    def embed(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(N, D) float32 unit vectors, one row per image."""
        if not images:
            return np.zeros((0, self.fingerprint.dim), dtype=np.float32)
        parts = [
            self.embed_prepared(self.prepare(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts)

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """(D,) unit vector of one image."""
        return self.embed([image])[0]

    def warmup(self) -> float:
        """Run the network once at the exact query shape; returns the seconds it took."""
        started = time.perf_counter()
        blank = np.full((self.input_size, self.input_size, 3), 255, dtype=np.uint8)
        self.embed_one(blank)
        return time.perf_counter() - started


def _named(network: str) -> str:
    """`Fingerprint.network` as people read it: "efficientnet-lite0 (weights …, 224 px)"."""
    backbone, rest = network.split("|", 1)
    weights, size, _ = rest.rsplit("|", 2)
    return f"{backbone} (weights {weights[:24]}, {size} px)"
