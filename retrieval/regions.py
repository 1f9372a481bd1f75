"""Image → candidate object boxes, each with a vector, from ONE forward pass of the backbone.

The backbone's last feature map (before global average pooling) is computed once at a larger
input side; every candidate box is the average of the map cells it covers (a summed-area
table makes each box O(1)), so hundreds of boxes cost one forward pass. A box's vector is then
what the catalog vectors are: an average of the same features, L2-normalised.
"""

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from retrieval.embedder import Embedder
from retrieval.errors import RuntimeModelError
from retrieval.feature_map import region_side
from retrieval.resize import to_square

MIN_CELLS = 2  # smallest box side, in cells (64 px of a 256 px input): a lamp, a chair
MAX_ASPECT = 2.5  # longer side / shorter side: furniture is rarely a thinner strip than this
FLAT = 5.0  # a box whose cells average less grey-level spread (std) than this is bare wall/floor


class FeatureMap(Protocol):
    """(1, S, S, 3) prepared input → (g, g, D) map (`retrieval.feature_map`)."""

    side: int

    def __call__(self, prepared: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Box:
    """A rectangle in the photo's pixels: left, top (inclusive), right, bottom (exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def iou(self, other: "Box") -> float:
        """Intersection over union."""
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.bottom, other.bottom) - max(self.top, other.top)
        inter = max(0, width) * max(0, height)
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


@dataclass(frozen=True)
class Regions:
    """Candidate boxes of one photo over its feature map; vectors are pooled on demand."""

    cells: np.ndarray  # (R, 4) int: boxes in map cells (left, top, right, bottom)
    content: np.ndarray  # (h, w, D) the map cells that cover the photo (not the padding)
    size: tuple[int, int]  # the photo's (height, width) in pixels
    texture: np.ndarray  # (h, w) grey-level std of the pixels under each content cell
    # (D,) unit mean of the whole square map, padding included, as the query's own pooling
    # sees the photo: a room photo's whole-photo vector without a forward at the query side
    whole: np.ndarray | None = None
    # (D,) the same mean as the backbone gives it, before a tuned head: what the room probe
    # judges (a room or one piece is a question of layout, not of the head's kinds)
    scene: np.ndarray | None = None
    # (D, D) what a pooled box is multiplied by before it is searched (a tuned head's inverse,
    # transposed: RegionEncoder.box_map); None: nothing. Applied to the few boxes pooled at
    # full size, not to the map: pooling is linear, and the map has up to 64 cells
    box_map: np.ndarray | None = None

    def box(self, i: int) -> Box:
        """Box `i` in the photo's pixels."""
        return _to_pixels(self.cells[i], self.content.shape[:2], self.size)

    def vectors(self, which: np.ndarray | list[int] | None = None) -> np.ndarray:
        """(n, D) unit vectors of the boxes `which` (default: all)."""
        cells = self.cells if which is None else self.cells[np.asarray(which, dtype=np.int64)]
        means = _box_means(self.content, cells)
        return _unit(means if self.box_map is None else means @ self.box_map)

    def flat(self) -> np.ndarray:
        """(R,) bool: boxes of bare wall, floor or ceiling (almost no texture under them).

        A plain wall is "nothing in particular" to the CNN and may still sit nearest some
        catalog picture; rooms_bench's chosen boxes never are this flat (docs/objects.md)."""
        return _box_means(self.texture[:, :, None], self.cells)[:, 0] < FLAT

    def projected(self, basis: np.ndarray) -> np.ndarray:
        """(R, d) unit vectors of every box in the subspace `basis` (D, d) spans; with a
        `box_map`, the caller folds it into the basis once (RegionEncoder.scoring_basis).

        Pooling is linear, so the map is projected once and boxes are pooled in d dimensions:
        ranking a thousand boxes costs less than pooling ten at full size.
        """
        return _unit(_box_means(self.content @ basis, self.cells))


class RegionEncoder:
    """Photo → feature map → candidate boxes, with whichever runtime computes the map."""

    def __init__(self, feature_map: FeatureMap, extractor: Embedder) -> None:
        self.feature_map_of = feature_map
        self.side = feature_map.side
        self.preprocess = extractor.backbone.preprocess
        self.embed = extractor.without_head().embed  # parts cut out: the query's own forward
        # A tuned head (`snapfind tune`) is linear before its normalisation: the whole photo
        # takes it, as a query does; boxes take the transpose of its inverse, so that their
        # inner product with the headed catalog is the backbone's own, divided by each
        # picture's length under the head (1.02-1.09 on IKEA; undoing that changed nothing
        # measurable: docs/objects.md, ninth pass). The kind head pulls pictures of one
        # category together, and boxes searched through it found a room's own products less
        # often (first object hit@5 0.158 -> 0.204 over four pseudo-room draws, 0.208 without
        # a head: docs/objects.md, eighth pass).
        head = extractor.head
        self._head = self.box_map = None
        if head is not None:
            self._head = (np.eye(len(head.residual)) + head.residual).astype(np.float32)
            self.box_map = np.linalg.pinv(self._head).T.astype(np.float32)

    def scoring_basis(self, basis: np.ndarray) -> np.ndarray:
        """(D, d) the basis a caller projects this encoder's regions with, `box_map` folded in:
        one (D, D) × (D, d) product per index instead of a (D, D) product per photo."""
        return basis if self.box_map is None else (self.box_map @ basis).astype(np.float32)

    def feature_map(
        self, image: np.ndarray
    ) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
        """(g, g, D) float32 map of the white-padded square photo (the network's, no head), the
        content's cells, and (g, g) the grey-level std of the pixels under each cell."""
        square = to_square(image, self.side)[None].astype(np.float32)  # (1, S, S, 3)
        fmap = self.feature_map_of(self.preprocess(square))
        height, width = image.shape[:2]
        cells = fmap.shape[0]
        texture = _texture(square[0], (height, width), cells)
        scale = cells / max(height, width)
        rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = (cells - rows) // 2, (cells - cols) // 2
        return fmap, (left, top, left + cols, top + rows), texture

    def cut_out(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """(n, D) unit vectors of `boxes` cut out of the photo, each embedded by the query
        network as a photo of its own (one batch): a chair that is 1-3 cells of the map gets a
        7×7 map of its own, not an average with the floor around it (docs/objects.md)."""
        vectors = self.embed([image[b.top : b.bottom, b.left : b.right] for b in boxes])
        return vectors if self.box_map is None else _unit(vectors @ self.box_map)

    def regions(self, image: np.ndarray, min_cells: int = MIN_CELLS) -> Regions:
        """Every box of at least `min_cells` cells a side, and not too thin, in the content."""
        fmap, (left, top, right, bottom), texture = self.feature_map(image)
        content = fmap[top:bottom, left:right]  # (h, w, D)
        mean = fmap.reshape(-1, fmap.shape[-1]).mean(axis=0, keepdims=True)  # pooling is linear
        scene = _unit(mean)[0]
        whole = scene if self._head is None else _unit(mean @ self._head)[0]
        h, w = content.shape[:2]
        cells = _boxes(h, w, min(min_cells, h, w))  # (R, 4) in content cells
        texture = texture[top:bottom, left:right]
        return Regions(
            cells, content, image.shape[:2], texture, whole, box_map=self.box_map, scene=scene
        )


def region_encoder_for(extractor: Embedder) -> RegionEncoder:
    """The region pass of the extractor that serves: the exported feature-map model beside a
    LiteRT runtime (no TensorFlow), or the Keras network rebuilt without its pooling."""
    from retrieval.runtime_extractor import RuntimeExtractor

    if isinstance(extractor, RuntimeExtractor):
        feature_map = extractor.feature_map()
        if feature_map.side != region_side(extractor.input_size):  # the index's hubness is not
            raise RuntimeModelError(  # measured at that side, and boxes would be other boxes
                f"the runtime's feature-map model is {feature_map.side} px, the region pass is "
                f"{region_side(extractor.input_size)} px now; export again: snapfind export"
            )
        return RegionEncoder(feature_map, extractor)
    from retrieval.feature_map import KerasFeatureMap

    return RegionEncoder(KerasFeatureMap(extractor, region_side(extractor.input_size)), extractor)


def cells_of(fractions: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(n, 4) boxes given as fractions of the photo (x0, y0, x1, y1) → the content cells that
    cover them (left, top, right, bottom), at least one cell a side."""
    h, w = grid
    scale = np.array([w, h, w, h], np.float64)
    spans = np.asarray(fractions, np.float64).reshape(-1, 4) * scale
    low = np.floor(spans[:, :2] + 1e-6).astype(np.int64)
    high = np.ceil(spans[:, 2:] - 1e-6).astype(np.int64)
    low = np.minimum(low, [w - 1, h - 1])
    high = np.clip(np.maximum(high, low + 1), 1, [w, h])
    return np.concatenate([low, high], axis=1)


@functools.lru_cache(maxsize=64)  # photos' grid shapes recur (≤ 1 MB each at 19×19)
def _boxes(h: int, w: int, smallest: int) -> np.ndarray:
    """(R, 4) boxes (left, top, right, bottom): sides ≥ `smallest`, aspect ≤ MAX_ASPECT;
    read-only, as it is shared."""
    spans_x = [(a, b) for a in range(w) for b in range(a + smallest, w + 1)]
    spans_y = [(a, b) for a in range(h) for b in range(a + smallest, h + 1)]
    boxes = np.array([(x0, y0, x1, y1) for y0, y1 in spans_y for x0, x1 in spans_x], np.int64)
    sides = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    slim = sides.max(axis=1) <= MAX_ASPECT * sides.min(axis=1)
    kept = boxes[slim] if slim.any() else boxes[:1]
    kept.flags.writeable = False
    return kept


def _texture(square: np.ndarray, size: tuple[int, int], cells: int) -> np.ndarray:
    """(g, g) grey-level std of the photo's own pixels under each map cell of its (S, S, 3)
    white-padded square (the padding left out: its edge is not the photo's texture; a cell
    all padding has none). Sums of x and x² per cell: a NaN-masked std took 1 ms a photo."""
    side = square.shape[0]
    scale = side / max(size)
    inner = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))  # as to_square
    top, left = (side - inner[0]) // 2, (side - inner[1]) // 2
    inside = (slice(top, top + inner[0]), slice(left, left + inner[1]))
    grey, counted = np.zeros((side, side)), np.zeros((side, side))
    grey[inside] = square[inside] @ np.full(3, 1 / 3, np.float32)  # a channel mean, 40x faster
    counted[inside] = 1.0
    pixels = side // cells
    covered = cells * pixels

    def per_cell(values: np.ndarray) -> np.ndarray:
        return values[:covered, :covered].reshape(cells, pixels, cells, pixels).sum(axis=(1, 3))

    count = per_cell(counted)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = per_cell(grey) / count
        variance = per_cell(grey * grey) / count - mean * mean
    return np.sqrt(np.clip(np.nan_to_num(variance), 0.0, None))


def _box_means(fmap: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(R, D) mean feature inside each box, via a summed-area table."""
    table = np.zeros((fmap.shape[0] + 1, fmap.shape[1] + 1, fmap.shape[2]), np.float32)
    table[1:, 1:] = fmap.cumsum(0).cumsum(1)
    x0, y0, x1, y1 = boxes.T
    sums = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]  # (R, D)
    return sums / ((x1 - x0) * (y1 - y0))[:, None].astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _to_pixels(cells: np.ndarray, grid: tuple[int, int], size: tuple[int, int]) -> Box:
    """A box in content cells → the same box in the photo's pixels."""
    (h, w), (height, width) = grid, size
    x0, y0, x1, y1 = (int(v) for v in cells)
    return Box(
        round(x0 * width / w), round(y0 * height / h), round(x1 * width / w), round(y1 * height / h)
    )


def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou: float,
    keep: int,
    keys: np.ndarray | None = None,
) -> list[int]:
    """Indices of the best-scoring (R, 4) boxes, dropping any that overlaps a better one by
    more than `iou` or shares its key (e.g. the same best product: one object seen twice)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(boxes), dtype=bool)
    chosen: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if not alive[i]:
            continue
        chosen.append(int(i))
        if len(chosen) == keep:
            break
        width = np.minimum(boxes[:, 2], boxes[i, 2]) - np.maximum(boxes[:, 0], boxes[i, 0])
        height = np.minimum(boxes[:, 3], boxes[i, 3]) - np.maximum(boxes[:, 1], boxes[i, 1])
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        alive &= inter <= iou * (areas + areas[i] - inter)
        if keys is not None:
            alive &= keys != keys[i]
    return chosen
