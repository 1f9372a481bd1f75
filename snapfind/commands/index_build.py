"""`snapfind index build`: catalog → published index."""

import argparse
from pathlib import Path

from index import scene_views
from index.build import BuildOptions, BuildReport, build_index
from index.catalog import catalog_source, describe_source
from index.indexed_views import MAX_VIEWS
from index.store_sync import sync_after_build
from retrieval.errors import ConfigError
from retrieval.extractor import Extractor
from retrieval.loading import load_extractor_to_build
from retrieval.settings import Settings
from retrieval.store_target import milvus_target
from snapfind.commands.options import add_extractor_options, path_argument, settings_from


def build_from_settings(
    settings: Settings,
    extractor: Extractor | None = None,
    *,
    full: bool = False,
    progress: bool = True,
    allow_roots: tuple[Path, ...] = (),
    objects: bool = False,
    views: int = 0,
    scenes: int = scene_views.VIEWS,
) -> BuildReport:
    """Build the index of `settings.catalog` into `settings.index_dir`."""
    if settings.catalog is None:
        raise ConfigError("no catalog given: pass --catalog PATH or set SNAPFIND_CATALOG")
    extractor = extractor or load_extractor_to_build(settings)
    options = BuildOptions(
        full=full,
        progress=progress,
        batch_size=settings.batch_size,
        ram_budget_bytes=settings.ann_ram_budget_mb * 2**20,
        limits=settings.image_limits,
        allow_roots=allow_roots,
        objects=objects,
        views=views,
        scenes=scenes,
    )
    return build_index(settings.catalog, settings.index_dir, extractor, options)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, catalog=args.catalog, index_dir=args.out)
    store = args.store or settings.store
    if store:
        milvus_target(store)  # a mistyped store is refused before the build, not after it
    if settings.catalog is not None:
        print(describe_source(catalog_source(settings.catalog)), flush=True)
    report = build_from_settings(
        settings,
        full=args.full,
        progress=not args.no_progress,
        allow_roots=tuple(args.allow_root),
        objects=args.objects,
        views=args.views,
        scenes=args.scenes,
    )
    print(
        f"published {report.release}\n"
        f"  {report.products} products, {report.vectors} vectors ({report.index_key}); "
        f"embedded {report.embedded}, reused {report.reused}, unreadable {report.unreadable}; "
        f"{report.seconds:.1f} s"
    )
    if report.unreadable:
        print(f"  unreadable images are listed in {report.release / 'unreadable.tsv'}")
    if store:
        synced = sync_after_build(store, settings.catalog, settings.index_dir, report.release)
        print(
            f"  {store}: {synced.upserted} upserted, {synced.deleted} deleted, "
            f"{synced.unchanged} unchanged"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="build the product index")
    actions = index.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build", help="build or refresh the index from a catalog (incremental unless --full)"
    )
    build.add_argument(
        "--catalog", type=path_argument, help="folder tree, CSV or JSONL (SNAPFIND_CATALOG)"
    )
    build.add_argument("--out", type=path_argument, help="index directory (SNAPFIND_INDEX_DIR)")
    build.add_argument("--full", action="store_true", help="re-embed every image")
    build.add_argument(
        "--store",
        help="also mirror into a vector database: milvus://HOST:PORT or milvus:///F.db "
        "(SNAPFIND_STORE)",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.add_argument(
        "--objects",
        action="store_true",
        help="also write what the bot's object step needs: which photos show a room and which "
        "catalog pictures look like any piece of one (about 20 s with Lite0); without them "
        "every photo is answered whole",
    )
    build.add_argument(
        "--views",
        type=int,
        default=0,
        choices=range(MAX_VIEWS + 1),
        metavar=f"0..{MAX_VIEWS}",
        help="also index this many crops of each picture (centre, then corners), so a photo "
        "of part of a product finds it; the index grows by as many vectors (default 0; "
        "docs/quality.md)",
    )
    build.add_argument(
        "--scenes",
        type=int,
        default=scene_views.VIEWS,
        choices=range(scene_views.MAX_VIEWS + 1),
        metavar=f"0..{scene_views.MAX_VIEWS}",
        help="also index this many furnished views of each table and bed picture (a table "
        "among the catalog's chairs, a bed between its nightstands), as shoppers photograph "
        f"them (default {scene_views.VIEWS}; 0: none; docs/quality.md)",
    )
    build.add_argument(
        "--allow-root",
        type=path_argument,
        action="append",
        default=[],
        metavar="DIR",
        help="also read catalog images under DIR (repeatable); by default only inside the "
        "catalog's own folder",
    )
    add_extractor_options(build)
    build.set_defaults(run=run)
