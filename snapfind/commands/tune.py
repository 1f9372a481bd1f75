"""`snapfind tune`: learn the light head over the backbone from the catalog, beside the index."""

import argparse

from index.category_head import CategoryHeadOptions
from index.tune import TuneOptions, TuneReport, tune
from retrieval.errors import ConfigError
from retrieval.loading import load_keras_extractor
from retrieval.settings import Settings
from snapfind.commands.options import add_extractor_options, path_argument, settings_from


def tune_from_settings(settings: Settings, options: TuneOptions) -> TuneReport:
    """Train the head of `settings.catalog` into `settings.index_dir` (plain backbone)."""
    if settings.catalog is None:
        raise ConfigError("no catalog given: pass --catalog PATH or set SNAPFIND_CATALOG")
    extractor = load_keras_extractor(settings)  # the plain backbone: no runtime, no head
    return tune(settings.catalog, settings.index_dir, extractor, options)


def options_from(args: argparse.Namespace) -> TuneOptions:
    """The options of `args`; --steps and --seed go to the head that is trained, and no
    --steps leaves that head its own default (the options refuse values they cannot use)."""
    steps = {} if args.steps is None else {"steps": args.steps}
    kinds = (
        CategoryHeadOptions(
            dim=args.kind_dim,
            strength=args.kind_strength,
            seed=args.seed,
            progress=not args.no_progress,
            **steps,
        )
        if args.head == "kinds"
        else None
    )
    return TuneOptions(
        views=args.views,
        seed=args.seed,
        holdout=args.holdout,
        category_weight=args.category_weight,
        progress=not args.no_progress,
        kinds=kinds,
        scenes=args.scenes,
        **({} if kinds else steps),
    )


def run(args: argparse.Namespace) -> int:
    options = options_from(args)  # bad options refused before anything is read
    settings = settings_from(args, catalog=args.catalog, index_dir=args.out)
    report = tune_from_settings(settings, options)
    skipped = f", left out {report.unreadable} unreadable" if report.unreadable else ""
    print(
        f"saved {report.head}\n"
        f"  trained on {report.trained} pictures, judged on {report.held_out} held out{skipped}; "
        f"features {report.feature_seconds:.1f} s, training {report.train_seconds:.1f} s\n"
        f"  held-out shopper views finding their own picture first: "
        f"{report.recall_before:.3f} -> {report.recall_after:.3f}; "
        f"nearest of their category: {report.category_before:.3f} -> {report.category_after:.3f}\n"
        f"  now rebuild the index with it: snapfind index build --out {settings.index_dir}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="learn a light head over the backbone from the catalog (saved beside the index)",
        description="Make shopper-like views of every catalog picture (room background, "
        "tilt, crop, light, blur, JPEG; tables among chairs, beds beside nightstands), learn a "
        "linear head from the catalog's categories (or each view's own picture), and save it "
        "as OUT/head.npz; `index build` and search then apply it. Views are cached: a re-run "
        "trains in seconds.",
    )
    parser.add_argument(
        "--catalog", type=path_argument, help="folder tree, CSV or JSONL (SNAPFIND_CATALOG)"
    )
    parser.add_argument("--out", type=path_argument, help="index directory (SNAPFIND_INDEX_DIR)")
    kinds, identity = CategoryHeadOptions(), TuneOptions()
    parser.add_argument(
        "--views", type=int, default=4, help="views per picture, at least 1 (default 4)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=identity.seed,
        help=f"seed of the views and of the head's training (default {identity.seed})",
    )
    parser.add_argument(
        "--holdout",
        type=float,
        default=identity.holdout,
        help="share of pictures judged, never trained on; strictly between 0 and 1 "
        f"(default {identity.holdout})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help=f"training steps of the chosen head (default: its own, {kinds.steps} for kinds, "
        f"{identity.steps} for identity)",
    )
    parser.add_argument(
        "--category-weight",
        type=float,
        default=identity.category_weight,
        help="pull one category together (0 = off; the identity head only)",
    )
    parser.add_argument(
        "--head",
        choices=("kinds", "identity"),
        default="kinds",
        help="kinds (default): the catalog's categories added to the vector (supervised "
        "contrastive, hard negatives), so a bed in a bedroom finds beds; identity: each view "
        "finds its own picture (lost on the full IKEA catalog, docs/quality.md)",
    )
    parser.add_argument(
        "--kind-dim", type=int, default=kinds.dim, help=f"kind dimensions (default {kinds.dim})"
    )
    parser.add_argument(
        "--kind-strength",
        type=float,
        default=kinds.strength,
        help=f"weight of the kind dimensions (default {kinds.strength})",
    )
    parser.add_argument(
        "--scenes",
        type=int,
        default=4,
        help="furnished views per table/bed picture: chairs around it, nightstands beside it "
        "(default 4; the kind head only)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_extractor_options(parser)
    parser.set_defaults(run=run)
