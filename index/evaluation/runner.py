"""The study: R seeded splits x B backbones, scored and costed in one run.

Splits are made once and shared by every backbone, so backbones are compared on exactly the
same queries. Per backbone the network is built once; its vectors come from the feature cache
where possible; its cost (parameters, dimension, ms per image, index bytes) is measured here,
in the same process, and the network's name is read from the Keras model that ran.
"""

from __future__ import annotations

import gc
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.catalog import load_catalog
from index.embedding import EmbedOptions, ExtractionStats, ImageJob, embed_missing
from index.evaluation.augment import augment_for_index, augment_for_query, variant_rng
from index.evaluation.dataset import Dataset, LabelledImage, prepare_dataset
from index.evaluation.outside import OutsideScores, QuerySet, read_query_csv, score_outside
from index.evaluation.scoring import RunScores, run_once
from index.evaluation.served_index import served_index
from index.evaluation.split import Split, stratified_split
from index.vector_cache import VectorCache
from retrieval.backbones import get_backbone
from retrieval.errors import ConfigError, ImageError
from retrieval.extractor import Extractor, Fingerprint
from retrieval.model_input import DECODING, decode_for_model
from retrieval.search import SearchService
from retrieval.weights_choice import parse_weights

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "snapfind" / "evaluate"


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone and the weights to run it with."""

    name: str
    weights: str

    @property
    def label(self) -> str:
        if self.weights == "imagenet":
            return self.name
        weights = self.weights if self.weights == "none" else Path(self.weights).stem
        return f"{self.name}:{weights}"


def parse_backbones(text: str, default_weights: str = "imagenet") -> tuple[BackboneSpec, ...]:
    """``"a,b:none,c:/path/w.h5"`` -> specs; unknown or repeated backbones are a ConfigError."""
    specs: list[BackboneSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, weights = item.partition(":")
        weights = parse_weights(weights.strip() or default_weights)
        spec = BackboneSpec(get_backbone(name).name, weights)
        if spec in specs:
            raise ConfigError(f"backbone {spec.label} is listed twice")
        specs.append(spec)
    if not specs:
        raise ConfigError("name at least one backbone, e.g. --backbones efficientnet-lite0")
    return tuple(specs)


@dataclass(frozen=True)
class StudyConfig:
    catalog: Path
    backbones: tuple[BackboneSpec, ...]
    runs: int = 3
    seed: int = 0  # run r uses seed + r
    min_class: int = 5
    test_fraction: float = 0.2
    distractors: tuple[str, ...] = ()
    augment_index: int = 0  # augmented copies of each catalog image in the index
    augment_queries: bool = False
    input_size: int | None = None
    cache: Path = DEFAULT_CACHE  # feature cache folder, one file per fingerprint
    queries: Path | None = None  # a `photo, category` CSV of outside photos, searched too
    batch_size: int = 16
    timing_images: int = 20

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ConfigError(f"--runs must be at least 1, not {self.runs}")
        if self.augment_index < 0:
            raise ConfigError(f"--augment-index must be 0 or more, not {self.augment_index}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"--test-fraction must be between 0 and 1, not {self.test_fraction}")
        if self.min_class < 2:
            raise ConfigError("--min-class must be at least 2 (a class needs a query and a match)")


@dataclass(frozen=True)
class BackboneResult:
    spec: BackboneSpec
    network: str  # the Keras model's own name: what actually ran
    weights_id: str
    params: int
    dim: int
    input_size: int
    ms_per_image: float  # median single-image latency after warm-up (decode excluded)
    load_average: float  # 1-minute load average just after timing: context for ms_per_image
    runs: tuple[RunScores, ...]
    extraction: ExtractionStats
    outside: OutsideScores | None = None  # the outside photos against the whole catalog

    def values(self, metric: str) -> list[float]:
        return [v for run in self.runs if (v := run.metrics[metric]) is not None]

    def mean(self, metric: str) -> float | None:
        values = self.values(metric)
        return statistics.fmean(values) if values else None

    def std(self, metric: str) -> float | None:
        """Sample standard deviation over runs (0 for a single run)."""
        values = self.values(metric)
        if not values:
            return None
        return statistics.stdev(values) if len(values) > 1 else 0.0

    @property
    def index_bytes(self) -> int:
        return round(statistics.fmean(run.index_bytes for run in self.runs))

    def category_means(self) -> dict[str, dict[str, float]]:
        """Per category, each metric's mean over runs."""
        merged: dict[str, dict[str, list[float]]] = {}
        for run in self.runs:
            for category, values in run.per_category.items():
                for metric, value in values.items():
                    merged.setdefault(category, {}).setdefault(metric, []).append(value)
        return {
            category: {m: statistics.fmean(v) for m, v in metrics.items()}
            for category, metrics in sorted(merged.items())
        }


@dataclass(frozen=True)
class StudyResult:
    config: StudyConfig
    dataset: Dataset
    splits: tuple[Split, ...]
    backbones: tuple[BackboneResult, ...]
    unreadable: int
    seconds: float
    queries: QuerySet | None = None


def run_study(config: StudyConfig, *, progress: bool = True) -> StudyResult:
    """Read the catalog, split R times, then extract, cost and score every backbone."""
    started = time.perf_counter()
    queries = read_query_csv(config.queries) if config.queries else None  # fail before the work
    catalog = load_catalog(config.catalog)
    dataset = prepare_dataset(
        catalog.entries, min_class=config.min_class, distractors=config.distractors
    )
    if not dataset.classes:
        raise ConfigError(
            f"{config.catalog}: no class has {config.min_class} or more distinct images; "
            "lower --min-class or add images"
        )
    splits = tuple(
        stratified_split(dataset.images, seed=config.seed + r, test_fraction=config.test_fraction)
        for r in range(config.runs)
    )
    log.info(
        "%d images, %d classes, %d runs of %d queries",
        len(dataset.images),
        len(dataset.classes),
        config.runs,
        len(splits[0].queries),
    )
    # outside photos search the whole catalog, as a shop's index holds it
    served = [LabelledImage(e.id, e.categories, e.content_hash, e.image) for e in catalog.entries]
    study = Study(dataset.images, splits, served if queries else [], queries)
    results = tuple(_study_backbone(spec, study, config, progress) for spec in config.backbones)
    return StudyResult(
        config=config,
        dataset=dataset,
        splits=splits,
        backbones=results,
        unreadable=len(catalog.unreadable),
        seconds=time.perf_counter() - started,
        queries=queries,
    )


@dataclass(frozen=True)
class Study:
    """What every backbone is run on."""

    images: Sequence[LabelledImage]  # the study's labelled images
    splits: Sequence[Split]
    served: Sequence[LabelledImage]  # the whole catalog, for outside photos (empty: none)
    queries: QuerySet | None


def _study_backbone(
    spec: BackboneSpec, study: Study, config: StudyConfig, progress: bool
) -> BackboneResult:
    images, splits = study.images, study.splits
    extractor = Extractor(spec.name, spec.weights, config.input_size)
    cache = VectorCache(config.cache, extractor.fingerprint)
    try:
        jobs = _jobs(study, config, extractor.input_size)
        options = EmbedOptions(batch_size=config.batch_size, progress=progress, desc=spec.label)
        done = embed_missing(extractor, jobs, cache, options)
        if done.unreadable:
            path, reason = done.unreadable[0]
            raise ConfigError(f"catalog image {path}: {reason}")
        vectors = done.vectors
        ms = _latency_ms(extractor, [images[i] for i in splits[0].queries], config.timing_images)
        return BackboneResult(
            spec=spec,
            network=extractor.model_name,
            weights_id=extractor.fingerprint.weights_id,
            params=extractor.param_count,
            dim=extractor.fingerprint.dim,
            input_size=extractor.input_size,
            ms_per_image=ms,
            load_average=os.getloadavg()[0],
            runs=tuple(
                _score_split(images, split, vectors, config, extractor.fingerprint)
                for split in splits
            ),
            extraction=done.stats,
            outside=_score_outside(extractor, study, vectors),
        )
    finally:
        cache.close()
        del extractor
        _free_keras_memory()


# Cache keys name the decoding too: vectors of other pixels (an older, full-size decoding)
# must not be taken for these.
def _key(image: LabelledImage) -> str:
    return f"{image.content_hash}~{DECODING}"


def _index_key(image: LabelledImage, copy: int, seed: int) -> str:
    return f"{_key(image)}~index{copy}~s{seed}"


def _query_key(image: LabelledImage, seed: int) -> str:
    return f"{_key(image)}~query~s{seed}"


def _jobs(study: Study, config: StudyConfig, side: int) -> list[ImageJob]:
    """Every vector any run needs: originals, index copies of catalog images, query views, the
    whole catalog for outside photos, decoded for input `side` exactly as the product does."""
    images, splits = study.images, study.splits
    catalog_side = sorted({i for split in splits for i in split.catalog})
    query_side = sorted({i for split in splits for i in split.queries})
    jobs = [ImageJob(_key(image), str(image.path), _loader(image, side)) for image in images]
    for i in catalog_side:
        for copy in range(config.augment_index):
            load = _loader(images[i], side, augment_for_index, f"index{copy}", config.seed)
            jobs.append(
                ImageJob(_index_key(images[i], copy, config.seed), str(images[i].path), load)
            )
    if config.augment_queries:
        for i in query_side:
            load = _loader(images[i], side, augment_for_query, "query", config.seed)
            jobs.append(ImageJob(_query_key(images[i], config.seed), str(images[i].path), load))
    jobs += [ImageJob(_key(image), str(image.path), _loader(image, side)) for image in study.served]
    return jobs


Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _loader(
    image: LabelledImage,
    side: int,
    augment: Augment | None = None,
    variant: str = "",
    seed: int = 0,
) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        pixels = decode_for_model(image.path.read_bytes(), side)  # (H, W, 3) uint8
        if augment is None:
            return pixels
        return augment(pixels, variant_rng(seed, image.content_hash, variant))

    return load


def _decode(path: Path, side: int) -> np.ndarray:
    try:
        return decode_for_model(path.read_bytes(), side)
    except (OSError, ImageError) as error:
        raise ConfigError(f"catalog image {path}: {error}") from None


def _score_split(
    images: Sequence[LabelledImage],
    split: Split,
    vectors: dict[str, np.ndarray],
    config: StudyConfig,
    fingerprint: Fingerprint,
) -> RunScores:
    queries = [images[i] for i in split.queries]
    rows: list[LabelledImage] = []  # the image each catalog-side vector is of
    keys: list[str] = []
    for i in split.catalog:
        copies = [_index_key(images[i], c, config.seed) for c in range(config.augment_index)]
        keys += [_key(images[i]), *copies]
        rows += [images[i]] * (1 + len(copies))
    query_keys = [
        _query_key(q, config.seed) if config.augment_queries else _key(q) for q in queries
    ]
    return run_once(
        rows,
        np.stack([vectors[key] for key in keys]),  # (catalog images x (1 + K), D)
        queries,
        np.stack([vectors[key] for key in query_keys]),  # (Q, D)
        fingerprint,
    )


def _score_outside(
    extractor: Extractor, study: Study, vectors: dict[str, np.ndarray]
) -> OutsideScores | None:
    """The outside photos through `SearchService` over an index of the whole catalog."""
    if study.queries is None:
        return None
    matrix = np.stack([vectors[_key(image)] for image in study.served])  # (V, D)
    with served_index(study.served, matrix, extractor.fingerprint) as index:
        return score_outside(SearchService(extractor, index), study.queries)


def _latency_ms(extractor: Extractor, queries: Sequence[LabelledImage], n: int) -> float:
    """Median ms to embed one decoded photo, as the bot does per query, after a warm-up."""
    photos = [_decode(image.path, extractor.input_size) for image in queries[: max(1, n)]]
    extractor.warmup()
    times = []
    for photo in photos:
        started = time.perf_counter()
        extractor.embed_one(photo)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def _free_keras_memory() -> None:
    """Drop the finished backbone's graph before the next one is built."""
    import keras

    keras.backend.clear_session()
    gc.collect()
