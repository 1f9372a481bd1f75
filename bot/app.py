"""Build the PTB `Application` and run it: polling or webhook, hot reload, graceful stop.

`serve` is the lifecycle (start → take updates until `stop` is set → stop taking updates →
finish replies in flight → shut down) and is what the tests drive; `run` adds what a process
needs around it: the token check, signals, and loading the model and index off the loop.

PTB's `run_polling`/`run_webhook` (and the `post_init`/`post_shutdown` hooks only they call)
own the event loop and its signal handlers; `serve` runs inside a loop that is already
running, as the loopback tests and SIGHUP reload need, so it calls PTB's
initialize/start/stop/shutdown itself, each exactly once.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import signal
from collections.abc import Callable
from urllib.parse import urlparse

from telegram import Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import Application, ApplicationBuilder

from bot.decoding import Decoder
from bot.handlers import add_handlers
from bot.heartbeat import beat
from bot.poll_guard import NoGuard
from bot.redaction import mask, redact_in_logs
from bot.reload import IndexReloader
from bot.resources import KEY, BotResources
from bot.retry import RetryingRequests
from bot.settings import BotSettings
from bot.state_setup import open_state, poll_guard
from bot.worker import InferenceWorker
from retrieval.errors import ConfigError, SnapfindError
from retrieval.query_api import Retrieval

log = logging.getLogger(__name__)

ALBUM_LIMIT = 10  # sendMediaGroup takes 2-10 photos
UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def token_of(settings: BotSettings) -> str:
    """The token, or one actionable line if it is missing."""
    if settings.bot_token is None:
        raise ConfigError(
            "SNAPFIND_BOT_TOKEN is not set: create a bot with @BotFather and export "
            "SNAPFIND_BOT_TOKEN=<the token it gives you> (or put it in .env)"
        )
    return settings.bot_token.get_secret_value()


def make_resources(settings: BotSettings, service: Retrieval) -> BotResources:
    """The handlers' shared state, sized from the settings."""
    return BotResources(
        service=service,
        worker=InferenceWorker(settings.queue_size),
        decoder=Decoder(settings.decode_slots),
        state=open_state(settings, token_of(settings).split(":")[0]),
        reloader=IndexReloader(service),
        page_size=min(settings.top_k, ALBUM_LIMIT),
        objects=settings.objects,
        allowed_users=settings.allowed_users,
        admin_ids=settings.admin_ids,
    )


def build_application(settings: BotSettings) -> Application:
    """The PTB application with every handler; `attach` its resources before `serve`.

    From here on the token is masked in every log record.
    """
    token = token_of(settings)
    redact_in_logs(token)
    timeout = settings.request_timeout
    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.bot_api_url)
        .base_file_url(settings.file_url)
        .concurrent_updates(settings.max_concurrent_updates)
        .rate_limiter(RetryingRequests())
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .media_write_timeout(max(timeout, 20.0))
        .build()
    )
    add_handlers(app, settings.admin_ids)
    if not settings.allowed_users:
        log.warning(
            "SNAPFIND_ALLOWED_USERS is empty: anyone on Telegram can use this bot "
            "(set it to a comma-separated list of user ids to make it private)"
        )
    return app


def attach(app: Application, res: BotResources) -> None:
    app.bot_data[KEY] = res


async def check_token(app: Application) -> None:
    """getMe once; a rejected token or an unreachable API becomes one actionable line.

    PTB's own InvalidToken message repeats the token, so it is never passed on.
    """
    host = urlparse(app.bot.base_url).netloc
    try:
        await app.initialize()
    except InvalidToken:
        await app.bot.shutdown()
        raise ConfigError(
            f"Telegram ({host}) rejected SNAPFIND_BOT_TOKEN: copy the token again from "
            "@BotFather (/mybots → API Token)"
        ) from None
    except NetworkError as error:
        await app.bot.shutdown()
        raise SnapfindError(
            f"cannot reach the Bot API at {host} ({mask(str(error))}): check the network, or "
            "SNAPFIND_BOT_API_URL if you run your own Bot API server"
        ) from None


async def connect(settings: BotSettings) -> Application:
    """`build_application`, initialized: its token checked with getMe (see `check_token`)."""
    app = build_application(settings)
    await check_token(app)
    return app


async def serve(
    app: Application,
    settings: BotSettings,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Take updates until `stop` is set, then stop taking them and finish those in flight.

    `app` comes from `connect`, with its resources attached. `ready` is set once updates can
    arrive: polling has started, or the webhook is registered with Telegram and its server
    listens (PTB marks its updater running before either).
    """
    res: BotResources = app.bot_data[KEY]
    guard = poll_guard(settings, res.state, app.bot.username, stop)
    res.worker.start()
    watcher: asyncio.Task[None] | None = None
    heart: asyncio.Task[None] | None = None
    try:
        await guard.acquire()
        await app.start()
        before = asyncio.all_tasks()
        await _start_updates(app, settings, guard)
        guard.watch(asyncio.all_tasks() - before)
        if settings.watch_interval > 0 and res.service.reloadable:
            watcher = asyncio.create_task(res.reloader.watch(settings.watch_interval))
        if settings.heartbeat_file is not None:
            heart = asyncio.create_task(
                beat(res, settings.heartbeat_file, settings.heartbeat_interval)
            )
        log.info(
            "serving %d products as @%s (%s)",
            res.service.describe().products,
            app.bot.username,
            settings.bot_mode,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("stopping: no new updates; finishing the replies in flight")
    finally:
        for task in (watcher, heart):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if app.updater is not None and app.updater.running:
            with contextlib.suppress(InvalidToken):  # the polling loop's end: `guard` says it
                await app.updater.stop()
        if app.running:
            await app.stop()  # waits for handlers already running
        await asyncio.to_thread(res.worker.stop)
        await guard.release()
        await res.state.close()
        await app.shutdown()
        log.info("stopped")
    guard.check()


def webhook_secret(settings: BotSettings) -> str:
    """The configured secret, else one derived from the token: the same in every replica.

    Each replica registers the webhook at start; a random secret per process would leave
    all but the last one refusing the updates the proxy hands them.
    """
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    token = token_of(settings).encode()
    digest = hmac.new(token, b"snapfind webhook secret", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def _start_updates(app: Application, settings: BotSettings, guard: NoGuard) -> None:
    assert app.updater is not None
    if settings.bot_mode == "webhook":
        secret = webhook_secret(settings)
        redact_in_logs(secret)
        await app.updater.start_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlparse(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url,
            secret_token=secret,
            allowed_updates=UPDATES,
        )
    else:
        await app.updater.start_polling(
            poll_interval=0.0,
            timeout=settings.poll_timeout,
            allowed_updates=UPDATES,
            error_callback=guard.on_poll_error,
        )


def run(settings: BotSettings, load_service: Callable[[], Retrieval]) -> None:
    """Run the bot until SIGTERM/SIGINT; SIGHUP reloads the index. Blocking.

    `load_service` (model + index, maybe building the index first) runs in a thread after
    the token has been checked, so a bad token is reported in seconds, not after a build.
    """
    asyncio.run(run_async(settings, load_service))


async def run_async(settings: BotSettings, load_service: Callable[[], Retrieval]) -> None:
    """`run` inside an existing event loop (which must be in the main thread, for signals)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every URL, token included
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for signum in signals[:2]:
        loop.add_signal_handler(signum, stop.set)
    try:
        app = await connect(settings)
        try:
            service = await asyncio.to_thread(load_service)
        except BaseException:
            await app.shutdown()
            raise
        res = make_resources(settings, service)
        attach(app, res)
        loop.add_signal_handler(signal.SIGHUP, lambda: app.create_task(_reload_logged(res)))
        if stop.is_set():  # stopped while the model or the index was loading
            await app.shutdown()
            return
        await serve(app, settings, stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _reload_logged(res: BotResources) -> None:
    """SIGHUP: reload, and say in the log whether it worked (there is no one to reply to)."""
    try:
        await res.reloader.reload()
    except Exception:
        log.exception("reload on SIGHUP failed; still serving the previous index")
