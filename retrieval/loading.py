"""Load the heavy things once, from settings: the extractor, the index, the search service.

An index is read by the extractor that made it: its manifest names the backbone, the weights
and the input size, so serving needs no extractor settings at all. Settings choose the
extractor only when an index is built.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import faiss

from retrieval.backbones import OFFLINE_BACKBONE, get_backbone
from retrieval.embedder import Embedder
from retrieval.errors import ConfigError, WeightsUnavailableError
from retrieval.extractor import Extractor, Fingerprint, file_sha256, resolve_weights
from retrieval.head import load_head
from retrieval.index_store import open_index, resolve_release
from retrieval.manifest import MANIFEST, Manifest
from retrieval.runtime_extractor import load_runtime_extractor
from retrieval.runtime_file import expected_fingerprint, find_runtime
from retrieval.search import SearchService
from retrieval.settings import Settings
from retrieval.store_index import store_opener
from retrieval.tf_runtime import configure_tensorflow
from retrieval.weights_choice import NAMED

log = logging.getLogger(__name__)

EXTRACTOR_FIELDS = ("backbone", "weights", "input_size")
E = TypeVar("E", bound=Embedder)


def load_extractor(settings: Settings, *, warmup: bool = False) -> Embedder:
    """The exported runtime model if there is one (no TensorFlow), else the Keras backbone;
    then the head `snapfind tune` saved beside the index, if any."""
    extractor = load_runtime_extractor(settings)
    if extractor is None:
        extractor = load_keras_extractor(settings)
        log.warning(
            "no exported runtime model for %s in %s: running Keras and TensorFlow; "
            "`snapfind export` makes queries faster and the process lighter",
            extractor.fingerprint.backbone,
            settings.runtime_dir,
        )
    head = load_head(settings.index_dir)
    if head is not None:
        extractor.attach_head(head)
    if warmup:
        seconds = extractor.warmup()
        log.info(
            "%s ready (%d px) after a %.1f s warm-up",
            extractor.model_name,
            extractor.input_size,
            seconds,
        )
    return extractor


def load_keras_extractor(settings: Settings) -> Extractor:
    """The Keras backbone itself: TensorFlow configured first (it reads options at import).

    The serving image has no TensorFlow, only the model exported at its build: an extractor
    it was not built for (another backbone, weights or input size) is one line, not a traceback.
    """
    try:
        configure_tensorflow(threads=settings.threads, onednn=settings.onednn)
    except ImportError as error:
        raise ConfigError(_no_tensorflow(settings, error)) from None
    return Extractor(settings.backbone, settings.weights, settings.input_size)


def _no_tensorflow(settings: Settings, error: ImportError) -> str:
    size = f", {settings.input_size} px" if settings.input_size else ""
    return (
        f"no exported runtime model for {settings.backbone} ({settings.weights} weights{size}) "
        f"in {settings.runtime_dir}, and TensorFlow, which would run it, cannot be imported "
        f"({error}): export it where TensorFlow is (`snapfind export`; in Docker, "
        "`docker compose build` with SNAPFIND_BACKBONE set), or set the backbone that was exported"
    )


def load_extractor_to_build(
    settings: Settings, load: Callable[[Settings], E] = load_extractor
) -> E:
    """The extractor that builds a new index (or is exported for it): the settings' choice.

    The default backbone needs a download; offline, when nobody chose a backbone, snapfind
    builds with the one whose weights ship in the package rather than stop, and says so.
    """
    settings = prefer_exported(settings)
    try:
        return load(settings)
    except WeightsUnavailableError:
        if _backbone_chosen(settings):
            raise
        log.warning(
            "the ImageNet weights of %s (the default backbone) could not be downloaded: "
            "building with %s, whose weights ship with snapfind; set SNAPFIND_BACKBONE to choose",
            settings.backbone,
            OFFLINE_BACKBONE,
        )
        offline = settings.model_copy(update={"backbone": OFFLINE_BACKBONE, "input_size": None})
        return load(offline)


def prefer_exported(settings: Settings) -> Settings:
    """`settings`, or the packaged backbone's when nobody chose a backbone, the default has no
    export and the packaged one has: what `snapfind export` leaves behind offline.

    So `make run` offline tries the default's download once (in `snapfind export`), and the
    bot that follows serves that export instead of trying, and failing, again.
    """
    if _backbone_chosen(settings):
        return settings
    default = expected_fingerprint(settings.backbone, settings.weights, settings.input_size)
    if find_runtime(settings.runtime_dir, default) is not None:
        return settings
    offline = settings.model_copy(update={"backbone": OFFLINE_BACKBONE, "input_size": None})
    packaged = expected_fingerprint(OFFLINE_BACKBONE, offline.weights, None)
    if find_runtime(settings.runtime_dir, packaged) is None:
        return settings
    log.info(
        "using the exported %s: %s (the default backbone) is not exported here; "
        "set SNAPFIND_BACKBONE to choose",
        OFFLINE_BACKBONE,
        settings.backbone,
    )
    return offline


def _backbone_chosen(settings: Settings) -> bool:
    return bool(settings.model_fields_set & {"backbone", "weights"})


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of the index published under `index_dir` (`IndexNotFoundError` if none)."""
    return Manifest.read(resolve_release(Path(index_dir)) / MANIFEST)


def settings_for_index(settings: Settings, index_dir: Path) -> Settings:
    """`settings` with the extractor of the index at `index_dir`, which decides it.

    A backbone, weights or input size set explicitly (environment, .env or an option) that
    contradicts the index is refused with both ways out, never silently overridden.
    """
    built = read_manifest(index_dir).fingerprint
    weights = _weights_setting(built, settings, index_dir)
    wanted = {"backbone": built.backbone, "weights": weights, "input_size": built.input_size}
    for name in sorted(settings.model_fields_set & set(EXTRACTOR_FIELDS)):
        if _identity(name, getattr(settings, name), built) != _identity(name, wanted[name], built):
            raise ConfigError(_contradiction(name, getattr(settings, name), built, index_dir))
    return settings.model_copy(update=wanted)


def _identity(name: str, value: object, built: Fingerprint) -> object:
    """What a setting amounts to: weights compare by the identity the fingerprint records."""
    if name == "weights":
        return resolve_weights(get_backbone(built.backbone), str(value))[1]
    if name == "backbone":
        return get_backbone(str(value)).name
    return value


def _weights_setting(built: Fingerprint, settings: Settings, index_dir: Path) -> str:
    """The weights setting that rebuilds the extractor recorded as `built.weights_id`."""
    if built.weights_id.startswith("none:"):
        return "none"
    if built.weights_id.split(":")[0] == "imagenet":
        return "imagenet"
    configured = settings.weights
    if configured not in NAMED and built.weights_id.endswith(file_sha256(Path(configured))[:16]):
        return configured
    raise ConfigError(
        f"the index at {index_dir} was built from a weights file ({built.weights_id}): set "
        "SNAPFIND_WEIGHTS (or --weights) to that file"
    )


def _contradiction(name: str, value: object, built: Fingerprint, index_dir: Path) -> str:
    option = name.replace("_", "-")
    return (
        f"the index at {index_dir} was built by {built.backbone} ({built.weights_id} weights, "
        f"{built.input_size} px), but SNAPFIND_{name.upper()} / --{option} asks for {value}. "
        f"Either unset it (the index decides which extractor reads it), or rebuild the index "
        f"with it: snapfind index build --out {index_dir} --{option} {value} --full"
    )


def load_service(settings: Settings, extractor: Embedder | None = None) -> SearchService:
    """The search service over `settings.index_dir`, with the extractor that built the index."""
    if extractor is None:
        extractor = load_extractor(settings_for_index(settings, settings.index_dir), warmup=True)
    opener = (
        open_index
        if settings.store is None
        else store_opener(settings.store, extractor.fingerprint)
    )
    index = opener(settings.index_dir, extractor.fingerprint)
    # Set once, when serving starts (an index build in this process keeps all cores before):
    # under load, two OpenMP threads per query made exact search 3-8x slower.
    faiss.omp_set_num_threads(settings.search_threads)
    return SearchService(
        extractor,
        index,
        settings.index_dir,
        limits=settings.image_limits,
        opener=opener,
        objects=settings.object_options,
    )
