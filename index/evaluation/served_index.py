"""The study's catalog side as a real index, searched the way the bot searches it.

A bare nearest-neighbour ranking is not what a shopper sees: the product applies the second
stage its manifest names (retrieval/rerank.py) and shows one slot per picture. So each run's
catalog side is written as a release in a temporary folder, with the parameters `snapfind index
build` writes into new manifests, and scored through `CatalogIndex.search`.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import faiss
import numpy as np

from index.build import _write_products
from index.catalog import CatalogEntry
from index.evaluation.dataset import LabelledImage
from retrieval.extractor import Fingerprint
from retrieval.index_store import CatalogIndex
from retrieval.manifest import MANIFEST, PRODUCTS, VECTORS, Manifest
from retrieval.no_match import MANIFEST_KEY as NO_MATCH_KEY
from retrieval.no_match import calibrate
from retrieval.rerank import DEFAULT as DEFAULT_RERANK
from retrieval.rerank import RerankParams


@contextmanager
def served_index(
    rows: Sequence[LabelledImage],
    vectors: np.ndarray,
    fingerprint: Fingerprint | None = None,
    rerank: RerankParams = DEFAULT_RERANK,
) -> Iterator[CatalogIndex]:
    """An open index of (V, D) unit `vectors`, row i an image (or augmented copy) of `rows[i]`,
    made by `fingerprint` (a nameless one for vectors of no extractor, as in tests).

    A product's categories are its images' labels, its first image's first; the manifest
    carries `rerank` and the "no good match" threshold calibrated as the build does.
    """
    labels: dict[str, list[str]] = {}
    for image in rows:
        known = labels.setdefault(image.product_id, [])
        known += [label for label in image.labels if label not in known]
    entries = [
        CatalogEntry(
            id=image.product_id,
            title=image.product_id,
            categories=tuple(labels[image.product_id]),
            image=image.path,
            content_hash=image.content_hash,
        )
        for image in rows
    ]
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)  # (V, D)
    fingerprint = fingerprint or Fingerprint("unnamed", "none", 0, int(matrix.shape[1]))
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    with TemporaryDirectory(prefix="snapfind-evaluate-") as folder:
        release = Path(folder)
        faiss.write_index(flat, str(release / VECTORS))
        products = _write_products(release / PRODUCTS, entries)
        threshold = calibrate(matrix, [image.content_hash for image in rows])
        manifest = Manifest(
            fingerprint=fingerprint,
            model_name=fingerprint.backbone,
            index_key="Flat",
            products=products,
            vectors=len(rows),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            catalog="(snapfind evaluate)",
            extra=rerank.to_manifest() | ({} if threshold is None else {NO_MATCH_KEY: threshold}),
        )
        (release / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        index = CatalogIndex(release, fingerprint)
        try:
            yield index
        finally:
            index.close()
