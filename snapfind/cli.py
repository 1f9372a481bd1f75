"""`snapfind`: one command, subcommands that map onto public functions."""

import argparse
import logging
import sys
from collections.abc import Sequence

from retrieval.errors import ConfigError, SnapfindError
from snapfind.commands import (
    backbones,
    bot,
    evaluate,
    export,
    health,
    index_build,
    search,
    tune,
)

COMMANDS = (backbones, export, index_build, tune, search, health, evaluate, bot)
NARRATED = {"bot", "evaluate", "export", "tune"}  # long-running: INFO logs show their progress


def parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to document the CLI)."""
    root = argparse.ArgumentParser(
        prog="snapfind",
        description="Find furniture from a photo: index a catalog, search it, run the bot.",
    )
    root.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return root


def _log_level(args: argparse.Namespace) -> int:
    """-v: everything; the long-running commands narrate at INFO; the rest only warn."""
    if args.verbose:
        return logging.DEBUG
    return logging.INFO if args.command in NARRATED else logging.WARNING


def _os_error_line(error: OSError) -> str:
    """`cannot use PATH: reason`: the path is what a person must fix, so it comes first.

    Most such errors come from writing (--out, --sheet), but the handler cannot tell a read
    from a write, so the verb stays neutral rather than guess.
    """
    reason = " ".join((error.strerror or str(error) or type(error).__name__).split())
    if error.filename is None:
        return reason
    path = str(error.filename)
    if error.filename2 is not None:
        path += f" -> {error.filename2}"
    return f"cannot use {path}: {reason}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; expected failures print one line and exit non-zero."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=_log_level(args),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the bot URL
    try:
        return int(args.run(args) or 0)
    except ConfigError as error:
        print(f"snapfind: error: {error}", file=sys.stderr)
        return 2
    except SnapfindError as error:
        print(f"snapfind: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # an output path: a missing folder, an existing file, a full disk
        print(f"snapfind: error: {_os_error_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("snapfind: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
