"""Photo → boxes of chairs, tables, desks, … from a small shipped SSD detector (LiteRT).

The model is MediaPipe's SSD-MobileNetV2 trained on 24 Open Images classes (the first stage
of MediaPipe Objectron), Apache-2.0, shipped in `retrieval/weights/` with its provenance
(NOTICE there). It outputs raw SSD tensors: 1,917 anchor boxes' encodings and class logits,
decoded here exactly as MediaPipe's SsdAnchorsCalculator / TensorsToDetectionsCalculator do
with Objectron's settings. It has no sofa, bed or lamp class: its boxes are extra candidates
beside the feature map's own (`retrieval/objects.py`), never the only ones.
"""

import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from retrieval.regions import non_max_suppression

WEIGHTS = Path(__file__).parent / "weights"
MODEL = WEIGHTS / "ssd_mobilenetv2_oidv4_fp16.tflite"
LABELS = WEIGHTS / "ssd_mobilenetv2_oidv4_labels.txt"
SIDE = 300  # the model's input side
MIN_SCORE = 0.3  # a box below this class probability is not kept (MediaPipe's demo: 0.6)
NMS_IOU = 0.45
MAX_BOXES = 10
FURNITURE = frozenset({"Chair", "Table", "Desk"})  # its classes that are furniture
# SSD box coder and anchors: MediaPipe's object_detection_oidv4 graph
SCALES_XY, SCALES_HW = 10.0, 5.0
STRIDES = (16, 32, 64, 128, 256, 512)
MIN_SCALE, MAX_SCALE = 0.2, 0.95
RATIOS = (1.0, 2.0, 0.5, 3.0, 1 / 3)


@dataclass(frozen=True)
class Detections:
    """Boxes as fractions of the photo (x0, y0, x1, y1), their class probability and name."""

    boxes: np.ndarray  # (n, 4) float32 in [0, 1]
    scores: np.ndarray  # (n,) float32
    labels: list[str]


class Detector:
    """The shipped SSD over one LiteRT interpreter; one photo at a time (locked)."""

    def __init__(self, threads: int = 0, classes: frozenset[str] = FURNITURE) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(
            model_path=str(MODEL), num_threads=threads or os.cpu_count() or 1
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self._boxes = outputs["raw_outputs/box_encodings"]
        self._classes = outputs["raw_outputs/class_predictions"]
        self.names = LABELS.read_text(encoding="utf-8").splitlines()
        self._wanted = np.array([name in classes for name in self.names])
        self._anchors = anchors()
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> Detections:
        """(H, W, 3) uint8 → furniture boxes, best first, overlapping ones merged."""
        stretched = Image.fromarray(image).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        prepared = np.asarray(stretched, np.float32)[None] / 127.5 - 1.0  # [-1, 1]
        with self._lock:
            self._interpreter.set_tensor(self._input, prepared)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._boxes)[0].copy()  # (A, 4): ty, tx, th, tw
            logits = self._interpreter.get_tensor(self._classes)[0].copy()  # (A, C)
        logits = np.where(self._wanted, logits, -np.inf)
        best = logits.argmax(axis=1)
        scores = 1 / (1 + np.exp(-logits[np.arange(len(best)), best]))
        keep = np.flatnonzero(scores >= MIN_SCORE)
        boxes = _decode(raw[keep], self._anchors[keep])
        order = non_max_suppression(boxes, scores[keep], NMS_IOU, MAX_BOXES)
        chosen = keep[order]
        return Detections(
            boxes[order].astype(np.float32),
            scores[chosen].astype(np.float32),
            [self.names[c] for c in best[chosen]],
        )


@cache
def anchors() -> np.ndarray:
    """(1917, 4) anchors (x centre, y centre, width, height) as fractions of the input."""
    out = []
    layers = len(STRIDES)
    scale = [MIN_SCALE + (MAX_SCALE - MIN_SCALE) * i / (layers - 1) for i in range(layers)] + [1.0]
    for layer, stride in enumerate(STRIDES):
        if layer == 0:  # reduce_boxes_in_lowest_layer
            shapes = [(0.1, 1.0), (scale[0], 2.0), (scale[0], 0.5)]
        else:
            shapes = [(scale[layer], r) for r in RATIOS]
            shapes.append((float(np.sqrt(scale[layer] * scale[layer + 1])), 1.0))
        cells = -(-SIDE // stride)
        for y in range(cells):
            for x in range(cells):
                for size, ratio in shapes:
                    root = np.sqrt(ratio)
                    out.append(((x + 0.5) / cells, (y + 0.5) / cells, size * root, size / root))
    return np.array(out, np.float32)


def _decode(raw: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Box encodings against their anchors → (n, 4) x0, y0, x1, y1, clipped to the photo."""
    cy = raw[:, 0] / SCALES_XY * anchor[:, 3] + anchor[:, 1]
    cx = raw[:, 1] / SCALES_XY * anchor[:, 2] + anchor[:, 0]
    h = np.exp(raw[:, 2] / SCALES_HW) * anchor[:, 3]
    w = np.exp(raw[:, 3] / SCALES_HW) * anchor[:, 2]
    return np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1), 0, 1)
