"""Load the heavy things once, from settings: the extractor, the index, the search service."""

import logging

import faiss

from retrieval.extractor import Extractor
from retrieval.head import load_head
from retrieval.index_store import open_index
from retrieval.search import SearchService
from retrieval.settings import Settings
from retrieval.tf_runtime import configure_tensorflow

log = logging.getLogger(__name__)


def load_extractor(settings: Settings, *, warmup: bool = False) -> Extractor:
    """Configure TensorFlow, build the backbone, and optionally trace it at the query shape."""
    configure_tensorflow(threads=settings.threads, onednn=settings.onednn)
    head = load_head(settings.index_dir)  # `snapfind tune` saves it beside the index
    extractor = Extractor(settings.backbone, settings.weights, settings.input_size, head)
    if warmup:
        seconds = extractor.warmup()
        log.info(
            "%s ready (%d px) after a %.1f s warm-up",
            extractor.model_name,
            extractor.input_size,
            seconds,
        )
    return extractor


def load_service(settings: Settings, extractor: Extractor | None = None) -> SearchService:
    """The search service over `settings.index_dir`, refusing an index of another extractor."""
    extractor = extractor or load_extractor(settings, warmup=True)
    index = open_index(settings.index_dir, extractor.fingerprint)
    # Set once, when serving starts (an index build in this process keeps all cores before):
    # under load, two OpenMP threads per query made exact search 3-8x slower.
    faiss.omp_set_num_threads(settings.search_threads)
    return SearchService(
        extractor,
        index,
        settings.index_dir,
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
    )
