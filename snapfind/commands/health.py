"""`snapfind health`: exit 0 when the index loads and the extractor answers (HEALTHCHECK)."""

import argparse
import time

from retrieval.loading import load_service
from snapfind.commands.options import add_extractor_options, index_dir_option, settings_from


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    service = load_service(settings_from(args, index_dir=args.index_dir))
    index = service.index
    probe = index.vector_of(index.store.get([0])[0].id)
    hits = service.search_vector(probe, k=1)
    if not hits:
        print("unhealthy: the index returned nothing")
        return 1
    print(
        f"healthy: {len(index)} products, {index.manifest.fingerprint.backbone} "
        f"({index.manifest.model_name}), {time.perf_counter() - started:.1f} s"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("health", help="check that the index loads and the model runs")
    index_dir_option(parser)
    add_extractor_options(parser)
    parser.set_defaults(run=run)
