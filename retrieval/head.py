"""A light learned head over the frozen backbone: features → projected unit vectors.

`snapfind tune` learns it from the catalog (index/tune.py) and saves it beside the index as
`head.npz` (plain arrays, never pickle). When that file is there, the extractor applies it to
every vector, catalog and query alike, and its hash enters the fingerprint, so an index built
without the head (or with another one) is refused rather than silently compared. The file also
names the network it was trained on: a head learnt on Lite0's features means nothing on
another backbone's, or on other weights of the same size.
"""

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import ConfigError

HEAD_FILE = "head.npz"
MAX_SIDE = 4096  # above every backbone's feature dimension (NASNetLarge's 4032)


@dataclass(frozen=True)
class ProjectionHead:
    """y = normalise(x + x @ residual): the identity at zero, so it starts from the backbone."""

    residual: np.ndarray  # (D, D) float32
    head_id: str  # "sha256:<16 hex>" of the residual
    network: str = ""  # `Fingerprint.network` it was trained on; "" = not recorded (older files)

    @property
    def dim(self) -> int:
        return int(self.residual.shape[1])

    def apply(self, features: np.ndarray) -> np.ndarray:
        """(N, D) unit features → (N, D) unit vectors."""
        projected = features + features @ self.residual  # (N, D)
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        return (projected / np.maximum(norms, 1e-12)).astype(np.float32)

    @classmethod
    def from_array(cls, residual: np.ndarray, network: str = "") -> "ProjectionHead":
        matrix = np.ascontiguousarray(residual, dtype=np.float32)
        digest = hashlib.sha256(matrix.tobytes()).hexdigest()[:16]
        return cls(matrix, f"sha256:{digest}", network)

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old head or the new one."""
        partial = path.with_name(f".{path.name}.partial.npz")
        np.savez(partial, residual=self.residual, network=np.array(self.network))
        partial.replace(path)


def load_head(index_dir: Path | None) -> ProjectionHead | None:
    """The head saved beside the index, if `snapfind tune` made one."""
    if index_dir is None or not (Path(index_dir) / HEAD_FILE).is_file():
        return None
    path = Path(index_dir) / HEAD_FILE
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if max(_declared_shape(arrays), default=0) > MAX_SIDE:
                raise ConfigError(
                    f"tuned head {path} is larger than any network's features: run "
                    "`snapfind tune` again, or move the file out of the index folder"
                )
            residual = arrays["residual"]
            network = arrays["network"] if "network" in arrays.files else np.array("")
    # numpy's own words advise pickle: not ours; a truncated or empty file is no zip (EOF)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(
            f"cannot read the tuned head {path} ({type(error).__name__}): not a file "
            "`snapfind tune` saved; run it again, or move the file out of the index folder"
        ) from None
    if residual.ndim != 2 or residual.shape[0] != residual.shape[1]:
        raise ConfigError(f"tuned head {path} is not a square matrix: {residual.shape}")
    if residual.dtype.kind != "f" or not np.isfinite(residual).all():
        raise ConfigError(  # NaN would index NaN vectors and answer every photo with "no match"
            f"tuned head {path} holds {residual.dtype} values that are not all finite numbers: "
            "run `snapfind tune` again, or move the file out of the index folder"
        )
    if network.dtype.kind != "U" or network.ndim != 0 or not _network_text(str(network)):
        raise ConfigError(
            f"tuned head {path} names no network it was trained on: run `snapfind tune` again"
        )
    return ProjectionHead.from_array(residual, str(network))


def _declared_shape(arrays: np.lib.npyio.NpzFile) -> tuple[int, ...]:
    """The residual's shape as its header states it, read before numpy allocates that much: a
    header claiming a huge matrix would otherwise be a MemoryError, or fill the memory."""
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    with arrays.zip.open("residual.npy") as member:
        return readers[np.lib.format.read_magic(member)](member)[0]  # KeyError: not numpy's


def _network_text(network: str) -> bool:
    """Whether `network` reads as `Fingerprint.network` (four fields) or is "" (not recorded)."""
    return network == "" or network.count("|") == 3
