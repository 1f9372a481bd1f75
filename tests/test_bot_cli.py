"""`snapfind bot` as a real process: first start builds the index, SIGHUP reloads, SIGTERM
stops after the reply in flight, and the token never reaches the log (even at -v debug).
"""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bot.settings import BotSettings
from retrieval.errors import IndexNotFoundError
from retrieval.extractor import Extractor
from snapfind.commands.bot import load_or_build
from snapfind.commands.health import check_heartbeat
from tests.telegram_api import TOKEN, BotApiServer
from tests.telegram_api.harness import BACKBONE, INPUT_SIZE, WEIGHTS, build, results
from tests.telegram_api.shapes import draw, png, write_catalog

ROOT = Path(__file__).resolve().parents[1]
USER = 1001


def titles(captions: list[str]) -> list[str]:
    return [c.splitlines()[0].split(" ", 1)[1] for c in captions]


def test_no_index_and_no_catalog_is_one_actionable_line(
    tmp_path: Path, tiny_extractor: Extractor
) -> None:
    settings = BotSettings(_env_file=None, index_dir=tmp_path / "nothing", catalog=None)
    with pytest.raises(IndexNotFoundError) as caught:
        load_or_build(settings)
    message = str(caught.value)
    assert "\n" not in message
    assert "SNAPFIND_CATALOG" in message and "snapfind index build" in message


async def _wait_for_log(log: Path, text: str, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(120):
        while text not in log.read_text(errors="replace"):
            if process.returncode is not None:
                raise AssertionError(f"snapfind bot exited early:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)


async def test_snapfind_bot_builds_serves_reloads_and_stops_gracefully(
    server: BotApiServer, tmp_path: Path, tiny_extractor: Extractor
) -> None:
    catalog = write_catalog(tmp_path / "catalog")
    index_dir = tmp_path / "index"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SNAPFIND_")},
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SNAPFIND_BOT_TOKEN": TOKEN,
        "SNAPFIND_BOT_API_URL": server.base_url,
        "SNAPFIND_BOT_FILE_URL": server.base_file_url,
        "SNAPFIND_CATALOG": str(catalog),
        "SNAPFIND_INDEX_DIR": str(index_dir),
        "SNAPFIND_BACKBONE": BACKBONE,
        "SNAPFIND_WEIGHTS": WEIGHTS,
        "SNAPFIND_INPUT_SIZE": str(INPUT_SIZE),
        "SNAPFIND_WATCH_INTERVAL": "0",  # only SIGHUP may reload here
        "SNAPFIND_OBJECTS": "false",  # the drawn shapes are no rooms
        "SNAPFIND_POLL_TIMEOUT": "5",
        "SNAPFIND_HEARTBEAT_FILE": str(tmp_path / "run" / "heartbeat"),
        "SNAPFIND_HEARTBEAT_INTERVAL": "0.5",
    }
    health = BotSettings(
        _env_file=None, heartbeat_file=tmp_path / "run" / "heartbeat", heartbeat_interval=0.5
    )
    assert check_heartbeat(health) == (
        False,
        f"no heartbeat yet at {health.heartbeat_file}: the bot is not serving",
    )
    log = tmp_path / "bot.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "snapfind", "-v", "bot",
            cwd=tmp_path, env=env, stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        await _wait_for_log(log, "serving 24 products", process)
        async with asyncio.timeout(30):
            while not check_heartbeat(health)[0]:
                await asyncio.sleep(0.1)
        await server.send_photo(USER, png(draw("sofa", "blue")), unique_id="sofa-blue")
        first, _ = await results(server, USER, timeout=30)
        assert titles(first.captions())[0] == "Blue sofa"

        # a new release, published by another process, is served after SIGHUP
        await asyncio.to_thread(build, tmp_path, tiny_extractor, "New ")
        process.send_signal(signal.SIGHUP)
        await _wait_for_log(log, "index reloaded", process)
        mark = len(server.calls)
        await server.send_photo(USER, png(draw("sofa", "blue")), unique_id="sofa-blue")
        again, _ = await results(server, USER, mark)
        assert titles(again.captions())[0] == "New Blue sofa"

        # SIGTERM while a reply is on its way: the reply still arrives, then a clean exit
        server.inject("getFile", "slow", hang=1.5)
        mark = len(server.calls)
        await server.send_photo(USER, png(draw("bed", "red")))
        async with asyncio.timeout(30):
            while ("getFile", "slow") not in server.faults_served:
                await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        last, _ = await results(server, USER, mark)
        assert titles(last.captions())[0] == "New Red bed"
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stale = time.time() - 2.0  # four beats of 0.5 s missed since the bot stopped
    os.utime(health.heartbeat_file, (stale, stale))
    healthy, reason = check_heartbeat(health)
    assert not healthy and "limit 2 s" in reason
    text = log.read_text(errors="replace")
    assert "building it from" in text and "index built: 24 products" in text
    assert "stopping: no new updates" in text and text.rstrip().endswith("stopped")
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "[REDACTED]" in text  # debug logging did try to print the token


async def test_snapfind_bot_refuses_a_wrong_token_in_one_line(
    server: BotApiServer, tmp_path: Path
) -> None:
    wrong = "987654321:WRONG-token_abcdefghijklmnopqrstuvwxyz"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SNAPFIND_")},
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SNAPFIND_BOT_TOKEN": wrong,
        "SNAPFIND_BOT_API_URL": server.base_url,
        "SNAPFIND_INDEX_DIR": str(tmp_path / "index"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "snapfind", "bot",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    lines = err.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines[-1].startswith("snapfind: error: Telegram (127.0.0.1:")
    assert "rejected SNAPFIND_BOT_TOKEN" in lines[-1]
    assert wrong not in (out + err).decode()
