"""Shared fixtures: synthetic labelled catalogs, small extractors built once per session, and
the loopback Bot API server with the shared shapes index the bot tests run against.

Heavy modules are imported inside the fixtures, so tests that use none of them (the bot's
unit tests against the in-memory fake) load neither TensorFlow nor FAISS.
"""

import os
from collections.abc import AsyncIterator, Iterator
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


@pytest.fixture(scope="session")
def shapes_index(tmp_path_factory: pytest.TempPathFactory, tiny_extractor):
    """The read-only index of the drawn-shapes catalog most bot tests share."""
    from tests.telegram_api.harness import shared_index

    return shared_index(tmp_path_factory.getbasetemp(), tiny_extractor)


@pytest.fixture
def service(shapes_index, tiny_extractor):
    """A fresh `SearchService` over the shared shapes index."""
    from tests.telegram_api.harness import service_for

    return service_for(shapes_index.index_dir, tiny_extractor)


@pytest.fixture
async def server() -> AsyncIterator:
    """The loopback Bot API server (tests/telegram_api), stopped after the test."""
    from tests.telegram_api import BotApiServer

    async with BotApiServer(lifetime=180) as api:
        yield api


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator:
    """A private, started redis-server (tests/redis_server.py); skips where none is installed."""
    from redis.exceptions import RedisError

    from tests.redis_server import RedisServer

    redis = RedisServer(tmp_path)
    try:
        redis.start()
    except (RuntimeError, OSError, RedisError) as error:
        redis.stop()
        pytest.skip(f"redis-server could not be started here: {error}")
    yield redis
    redis.stop()
