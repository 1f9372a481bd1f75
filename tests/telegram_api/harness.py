"""Test harness: a tiny real index of drawn shapes and the real bot running against the server.

The extractor is the suite's `tiny_extractor` (EfficientNetB0, seeded random weights, 64 px,
matching the settings below); the shared index is built once per process, and tests that
change an index build their own small one.
"""

import asyncio
import contextlib
import functools
import inspect
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import attach, connect, make_resources, serve
from bot.resources import BotResources
from bot.settings import BotSettings
from index.build import BuildOptions, build_index
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.search import SearchService

from .server import TOKEN, BotApiServer, Call
from .shapes import write_catalog

BACKBONE, WEIGHTS, INPUT_SIZE = "efficientnetb0", "none", 64


@dataclass(frozen=True)
class BuiltIndex:
    catalog: Path
    index_dir: Path


def build(root: Path, extractor: Extractor, edition: str = "") -> BuiltIndex:
    """Write the shapes catalog (titles prefixed by `edition`) under `root` and index it."""
    catalog = write_catalog(root / f"catalog{edition.strip()}", edition)
    index_dir = root / "index"
    build_index(catalog, index_dir, extractor, BuildOptions(progress=False))
    return BuiltIndex(catalog, index_dir)


@functools.cache
def shared_index(base: Path, extractor: Extractor) -> BuiltIndex:
    """The read-only index most tests share (built once per process)."""
    fingerprint = extractor.fingerprint
    if (fingerprint.backbone, fingerprint.input_size) != (BACKBONE, INPUT_SIZE):
        raise ValueError(f"the bot tests expect {BACKBONE} at {INPUT_SIZE} px, not {fingerprint}")
    root = base / "shared-bot-index"
    shutil.rmtree(root, ignore_errors=True)
    return build(root, extractor)


def service_for(index_dir: Path, extractor: Extractor) -> SearchService:
    return SearchService(extractor, open_index(index_dir, extractor.fingerprint), index_dir)


def bot_settings(server: BotApiServer, index_dir: Path, **overrides: Any) -> BotSettings:
    """Settings pointing at the loopback server; no .env file is read."""
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "bot_api_url": server.base_url,
        "bot_file_url": server.base_file_url,
        "backbone": BACKBONE,
        "weights": WEIGHTS,
        "input_size": INPUT_SIZE,
        "index_dir": index_dir,
        "poll_timeout": 5,
        "request_timeout": 5.0,
        "watch_interval": 0,
        "objects": False,  # the drawn shapes are no rooms: tests/test_bot_objects.py turns it on
    }
    values.update(overrides)
    return BotSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class RunningBot:
    app: Application
    res: BotResources
    stop: asyncio.Event
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_bot(
    settings: BotSettings, service: SearchService, *, stop_timeout: float = 30.0
) -> AsyncIterator[RunningBot]:
    """Serve until the block ends, then stop gracefully (and fail if that hangs)."""
    app = await connect(settings)
    res = make_resources(settings, service)
    attach(app, res)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(app, settings, stop, ready))
    async with asyncio.timeout(20):
        started = asyncio.create_task(ready.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            started.cancel()
            task.result()  # surfaces a failed start
            raise AssertionError("serve() returned before it was ready")
    try:
        yield RunningBot(app, res, stop, task)
    finally:
        stop.set()
        async with asyncio.timeout(stop_timeout):
            await task


async def results(
    server: BotApiServer, chat: int, start: int = 0, *, timeout: float = 20.0
) -> tuple[Call, Call]:
    """The next album (sendMediaGroup) and the buttons message after it."""
    album = await server.reply(chat, "sendMediaGroup", start=start, timeout=timeout)
    buttons = await server.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == chat and "reply_markup" in c.params,
        start=server.calls.index(album),
        timeout=timeout,
    )
    return album, buttons


async def text_reply(server: BotApiServer, chat: int, start: int) -> str:
    return (await server.reply(chat, "sendMessage", start=start)).params["text"]


def button(call: Call, text: str) -> str:
    return next(data for label, data in call.buttons() if label == text)


async def until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait for a state change no message marks (a count, a swapped release, a key gone from
    Redis), checking as the loop runs; `condition` may be a coroutine function (a question
    to Redis). Fails after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not await _answer(condition()):
            await asyncio.sleep(0.01)


async def _answer(value: object) -> object:
    return await value if inspect.isawaitable(value) else value
