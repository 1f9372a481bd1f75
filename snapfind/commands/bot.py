"""`snapfind bot`: serve the Telegram bot (long polling or webhook) over a published index.

If no index exists yet but a catalog is configured, the first start builds it (progress in
the log) and then serves; this composition root is the one place that may join `bot/` and
`index/`.
"""

import argparse
import logging
import time

import numpy as np

from bot.app import run as run_bot
from bot.settings import BotSettings
from index.catalog import catalog_source, describe_source
from retrieval.errors import IndexNotFoundError
from retrieval.loading import load_extractor_to_build, load_service
from retrieval.search import SearchService
from snapfind.commands.index_build import build_from_settings
from snapfind.commands.options import (
    add_extractor_options,
    index_dir_option,
    path_argument,
    settings_from,
)

log = logging.getLogger(__name__)

NOT_A_PRODUCT_PHOTO = np.full((240, 320, 3), 128, np.uint8)  # grey: no white border, a "room"


def load_or_build(settings: BotSettings) -> SearchService:
    """The search service over `settings.index_dir`, building the index first if need be.

    An existing index brings its own extractor; the settings choose one only to build. A bot
    that looks for objects builds the room references with it (`index build --objects`).
    """
    try:
        return load_service(settings)
    except IndexNotFoundError:
        if settings.catalog is None:
            raise IndexNotFoundError(
                f"no index at {settings.index_dir}: set SNAPFIND_CATALOG to a catalog (the bot "
                f"builds the index at first start) or build one: snapfind index build "
                f"--catalog PATH --out {settings.index_dir} (in the container: docker compose "
                f"run --rm index-build)"
            ) from None
    source = describe_source(catalog_source(settings.catalog))
    log.info("no index at %s yet: building it from the %s", settings.index_dir, source)
    extractor = load_extractor_to_build(settings)
    report = build_from_settings(settings, extractor, objects=settings.objects)
    log.info(
        "index built: %d products, %d images, %d unreadable, %.1f s",
        report.products,
        report.vectors,
        report.unreadable,
        report.seconds,
    )
    extractor.warmup()
    return load_service(settings, extractor)


def serving(settings: BotSettings) -> SearchService:
    """`load_or_build`, then, if the bot looks for objects, one object search of a grey
    picture: the region network and the object finder are built before the first shopper's
    room photo rather than during it (tens of seconds on a small CPU). Where the object step
    cannot run, the object search has already logged why, and nothing claims it is ready."""
    service = load_or_build(settings)
    if settings.objects:
        started = time.perf_counter()
        service.search_objects(NOT_A_PRODUCT_PHOTO, 1)
        if service.objects_ready():
            log.info("object search ready after %.1f s", time.perf_counter() - started)
    return service


def run(args: argparse.Namespace) -> int:
    settings = settings_from(
        args,
        BotSettings,
        index_dir=args.index_dir,
        catalog=args.catalog,
        bot_mode=args.mode,
        webhook_url=args.webhook_url,
        webhook_listen=args.listen,
        webhook_port=args.port,
    )
    run_bot(settings, lambda: serving(settings))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bot",
        help="run the Telegram bot (token in SNAPFIND_BOT_TOKEN)",
        description="Run the Telegram bot until SIGTERM/SIGINT; SIGHUP reloads the index. "
        "Everything else comes from SNAPFIND_* variables or .env (see docs/bot.md).",
    )
    index_dir_option(parser)
    parser.add_argument(
        "--catalog", type=path_argument, help="catalog to build the index from if none exists yet"
    )
    parser.add_argument(
        "--mode", choices=("polling", "webhook"), help="how updates arrive (SNAPFIND_BOT_MODE)"
    )
    parser.add_argument("--webhook-url", help="public URL for webhook mode (SNAPFIND_WEBHOOK_URL)")
    parser.add_argument("--listen", help="webhook listen address (SNAPFIND_WEBHOOK_LISTEN)")
    parser.add_argument("--port", type=int, help="webhook listen port (SNAPFIND_WEBHOOK_PORT)")
    add_extractor_options(parser)
    parser.set_defaults(run=run)
