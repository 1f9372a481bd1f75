"""Typed settings from the environment (prefix SNAPFIND_) or a `.env` file.

Built once by the command line and passed down as plain values: no module reads the
environment itself.
"""

from dataclasses import replace
from pathlib import Path
from typing import TypeVar, get_args

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.errors import ConfigError
from retrieval.limits import DEFAULT_LIMITS, ImageLimits
from retrieval.object_options import CUT_OUTS, DEFAULT_OBJECTS, ObjectOptions
from retrieval.weights_choice import parse_weights


class Settings(BaseSettings):
    """What the retrieval core and the index builder need to know."""

    model_config = SettingsConfigDict(
        env_prefix="SNAPFIND_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    backbone: str = Field("efficientnetb7", description="Feature extractor (`snapfind backbones`).")
    weights: str = Field(
        "imagenet", description="`imagenet`, `none` (random, for tests) or a weights file path."
    )
    input_size: int | None = Field(
        None, ge=32, le=1024, description="Square input side in pixels; default: the backbone's."
    )
    index_dir: Path = Field(Path("data/index"), description="Where published indexes live.")
    catalog: Path | None = Field(
        None, description="Catalog folder, CSV or JSONL; used to build the index if none exists."
    )
    top_k: int = Field(5, ge=1, le=50, description="Products per answer.")
    batch_size: int = Field(
        16, ge=1, le=256, description="Images per extractor call when indexing."
    )
    runtime_dir: Path = Field(
        Path("data/runtime"),
        description="Exported runtime models (`snapfind export`): served without TensorFlow.",
    )
    threads: int = Field(
        0, ge=0, le=256, description="Inference threads (TensorFlow or LiteRT); 0 = all cores."
    )
    onednn: bool = Field(
        True,
        description="TensorFlow's oneDNN kernels: queries 21-28% faster for ~0.2 GiB more memory.",
    )
    search_threads: int = Field(
        1, ge=1, le=256, description="FAISS threads per query; 1 is fastest beside the model."
    )
    object_detector: bool = Field(
        DEFAULT_OBJECTS.detect,
        description="Room photos: the shipped chair/table detector picks the first object where "
        "it is sure of it, cut out and embedded on its own (better first album for rooms, about "
        "one query more: docs/objects.md).",
    )
    object_cut_out: bool = Field(
        DEFAULT_OBJECTS.cut_outs > 0,
        description="Room photos without a detected chair or table: the region map's first box "
        "is cut out and embedded on its own (better first album, one query forward more: "
        "docs/objects.md).",
    )
    max_image_bytes: int = Field(  # no file past the decoder's canvas bound is worth reading
        DEFAULT_LIMITS.max_bytes,
        ge=1024,
        le=DEFAULT_LIMITS.max_canvas_bytes,
        description="Largest accepted image file in bytes.",
    )
    max_image_pixels: int = Field(
        DEFAULT_LIMITS.max_pixels,
        ge=1024,
        description="Largest accepted image in pixels (decompression bombs).",
    )
    ann_ram_budget_mb: int = Field(
        4096, ge=16, description="Memory the vector index may use; picks exact or ANN."
    )
    store: str | None = Field(
        None,
        description="Search a vector store instead of the index's FAISS file: "
        "milvus://HOST:PORT?collection=NAME or milvus:///FILE.db (the index still supplies the "
        "products); `snapfind index build` also fills it.",
    )

    @property
    def image_limits(self) -> ImageLimits:
        """The image bounds, with the two that settings may change."""
        return replace(
            DEFAULT_LIMITS, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
        )

    @property
    def object_options(self) -> ObjectOptions:
        """How room photos' first object is found, from the two switches settings expose."""
        cut_outs = CUT_OUTS if self.object_cut_out else 0
        return ObjectOptions(self.object_detector, cut_outs, self.threads)

    @field_validator("*", mode="before")
    @classmethod
    def _no_empty_path(cls, value: object, info: ValidationInfo) -> object:
        """`SNAPFIND_CATALOG=` would be `Path("")`, the current folder: a build would index
        whatever folder it runs in. An empty path is refused; unset means the default."""
        if isinstance(value, str) and not value.strip() and _is_path(cls, info.field_name):
            raise ValueError("is empty: give a path, or remove the line to use the default")
        return value

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        from retrieval.backbones import get_backbone

        try:
            return get_backbone(value).name
        except ConfigError as error:
            raise ValueError(str(error)) from None

    @field_validator("weights")
    @classmethod
    def _weights_form(cls, value: str) -> str:
        try:
            return parse_weights(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None


def _is_path(cls: type[BaseSettings], name: str | None) -> bool:
    """Whether field `name` of `cls` (or a subclass's field) holds a path."""
    field = cls.model_fields.get(name or "")
    return field is not None and Path in (field.annotation, *get_args(field.annotation))


def _field_name(location: tuple[int | str, ...], given: set[str]) -> str:
    """`backbone` → `SNAPFIND_BACKBONE`: the name the user actually set, or, for a value from
    a command-line option (one of `given`), that setting as the command line gave it."""
    name = ".".join(str(part) for part in location)
    if location and location[0] in given:
        return f"{name} (from the command line)"
    return f"SNAPFIND_{name.upper()}" if name else "settings"


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S] = Settings, **overrides: object) -> S:  # type: ignore[assignment]
    """Build settings, turning pydantic's report into one readable line."""
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        given = {key for key, value in overrides.items() if value is not None}
        problems = "; ".join(
            f"{_field_name(e['loc'], given)}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    except UnicodeDecodeError as error:  # a .env saved as Latin-1 or UTF-16 by an editor
        env_file = cls.model_config.get("env_file")
        raise ConfigError(
            f"{env_file} is not UTF-8 text (byte {error.start}): save it as UTF-8"
        ) from None
