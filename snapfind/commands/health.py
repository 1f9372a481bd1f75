"""`snapfind health`: exit 0 when snapfind can answer (the container's HEALTHCHECK).

Without options it proves the whole path: the index loads and the extractor runs. With
`--heartbeat` it only reads the age of the file the serving bot touches after each probe,
so a health check costs no second TensorFlow process beside the bot.
"""

import argparse
import time

from bot.heartbeat import heartbeat_age
from bot.settings import BotSettings
from retrieval.errors import ConfigError
from retrieval.loading import load_service
from retrieval.settings import load_settings
from snapfind.commands.options import index_dir_option, settings_from

MISSED_BEATS = 3  # a bot that missed this many probes in a row is unhealthy


def check_heartbeat(settings: BotSettings) -> tuple[bool, str]:
    """(healthy, reason) from the age of the bot's heartbeat file."""
    if settings.heartbeat_file is None:
        raise ConfigError("--heartbeat needs SNAPFIND_HEARTBEAT_FILE, the file the bot touches")
    age = heartbeat_age(settings.heartbeat_file)
    limit = MISSED_BEATS * settings.heartbeat_interval
    if age is None:
        return False, f"no heartbeat yet at {settings.heartbeat_file}: the bot is not serving"
    if age > limit:
        return False, f"last heartbeat {age:.0f} s ago (limit {limit:.0f} s)"
    return True, f"bot serving, last heartbeat {age:.0f} s ago"


def check_service(args: argparse.Namespace) -> tuple[bool, str]:
    """(healthy, reason) from loading the index and running the extractor once."""
    started = time.perf_counter()
    service = load_service(settings_from(args, index_dir=args.index_dir))
    if not service.probe():
        return False, "the index returned nothing"
    info = service.describe()
    return True, (
        f"{info.products} products, {info.backbone} at {info.input_size} px, "
        f"{time.perf_counter() - started:.1f} s"
    )


def run(args: argparse.Namespace) -> int:
    if args.heartbeat:
        healthy, reason = check_heartbeat(load_settings(BotSettings))
    else:
        healthy, reason = check_service(args)
    print(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
    return 0 if healthy else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("health", help="check that the index loads and the model runs")
    parser.add_argument(
        "--heartbeat",
        action="store_true",
        help="only check that the running bot's heartbeat file is fresh (cheap)",
    )
    index_dir_option(parser)
    parser.set_defaults(run=run)
