"""A photo's scene vector → does it show a room, or one piece? Which album a photo gets first.

A photo not on white goes through the region pass either way (its whole-photo vector is the
map's mean). A room gets numbered boxes and its first object's album; a shopper's photo of one
sofa is answered better by the photo itself (docs/objects.md, seventh pass). The probe is a
linear function the index build learns from the catalog (index/room_probe_training.py), on
the map's mean as the backbone gives it (`Regions.scene`): a tuned head draws kinds together,
and through it the probe called more shoppers' beds rooms (docs/objects.md, ninth pass).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoomProbe:
    """A linear score of the scene vector: above 0, a room."""

    weights: np.ndarray  # (D,) float32
    bias: float

    @classmethod
    def from_array(cls, values: np.ndarray) -> "RoomProbe":
        """(D + 1,): the weights, then the bias, as the build writes them."""
        return cls(values[:-1], float(values[-1]))

    def shows_room(self, scene: np.ndarray) -> bool:
        """`scene`: the (D,) `Regions.scene` of the region pass (its map's mean, no head)."""
        return float(scene @ self.weights) + self.bias > 0
