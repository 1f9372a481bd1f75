"""Pytest fixtures of the bot tests; test modules import the ones they use.

Registered under short names (`server`, `service`, `shapes_index`) while the functions carry
a `_fixture` suffix, so importing them does not shadow the test parameters. They build on
the suite's session-wide `tiny_extractor` (tests/conftest.py).
"""

from collections.abc import AsyncIterator

import pytest

from retrieval.extractor import Extractor
from retrieval.search import SearchService

from .harness import BuiltIndex, service_for, shared_index
from .server import BotApiServer


@pytest.fixture(scope="session", name="shapes_index")
def shapes_index_fixture(
    tmp_path_factory: pytest.TempPathFactory, tiny_extractor: Extractor
) -> BuiltIndex:
    """The shared read-only index of the shapes catalog."""
    return shared_index(tmp_path_factory.getbasetemp(), tiny_extractor)


@pytest.fixture(name="service")
def service_fixture(shapes_index: BuiltIndex, tiny_extractor: Extractor) -> SearchService:
    return service_for(shapes_index.index_dir, tiny_extractor)


@pytest.fixture(name="server")
async def server_fixture() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(lifetime=180) as api:
        yield api
