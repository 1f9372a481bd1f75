"""Options shared by several subcommands, and turning them into settings."""

import argparse
from pathlib import Path
from typing import TypeVar

from retrieval.settings import Settings, load_settings

S = TypeVar("S", bound=Settings)


def path_argument(text: str) -> Path:
    """A path given on the command line; an empty one is refused, where `Path("")` would be
    the current folder (`index build --out ""` built the index into it)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name a file or folder")
    return Path(text)


def add_extractor_options(parser: argparse.ArgumentParser) -> None:
    """--backbone, --weights, --input-size: override SNAPFIND_BACKBONE etc."""
    group = parser.add_argument_group("extractor (default: settings / SNAPFIND_*)")
    group.add_argument("--backbone", help="backbone name, see `snapfind backbones`")
    group.add_argument("--weights", help="imagenet, none, or a weights file")
    group.add_argument("--input-size", type=int, help="square input side in pixels")


def settings_from(
    args: argparse.Namespace,
    cls: type[S] = Settings,  # type: ignore[assignment]
    **fields: object,
) -> S:
    """Settings (or a subclass's) from the environment and .env, overridden by the options
    given: the extractor options plus `fields`."""
    return load_settings(
        cls,
        backbone=getattr(args, "backbone", None),
        weights=getattr(args, "weights", None),
        input_size=getattr(args, "input_size", None),
        **fields,
    )


def index_dir_option(parser: argparse.ArgumentParser, flag: str = "--index") -> None:
    parser.add_argument(
        flag,
        dest="index_dir",
        type=path_argument,
        help="index directory (default SNAPFIND_INDEX_DIR)",
    )
