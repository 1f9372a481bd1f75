"""Shared fixtures: synthetic labelled catalogs and small extractors built once per session."""

import os
from pathlib import Path

import pytest

from tests.synthetic import write_shapes_catalog

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def shapes_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session")
def tiny_extractor():
    """EfficientNetB0 with seeded random weights at 64 px: fast, deterministic, no download."""
    from retrieval.extractor import Extractor
    from retrieval.tf_runtime import configure_tensorflow

    configure_tensorflow()
    return Extractor("efficientnetb0", "none", 64)


@pytest.fixture(scope="session")
def lite0_extractor():
    """EfficientNet-Lite0 with its packaged ImageNet weights: real features, offline."""
    from retrieval.extractor import Extractor
    from retrieval.tf_runtime import configure_tensorflow

    configure_tensorflow()
    return Extractor("efficientnet-lite0", "imagenet")
