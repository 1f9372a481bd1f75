"""`snapfind evaluate`: the backbone comparison study, written as a report folder."""

import argparse
import shlex
import sys
from pathlib import Path

from index.evaluation.outside import OutsideScores
from index.evaluation.report import REPORT_MD, require_plotting, write_report
from index.evaluation.runner import (
    DEFAULT_CACHE,
    StudyConfig,
    StudyResult,
    parse_backbones,
    run_study,
)
from retrieval.errors import ConfigError
from retrieval.settings import Settings, load_settings
from retrieval.tf_runtime import configure_tensorflow
from snapfind.commands.options import path_argument


def evaluate(config: StudyConfig, out: Path, *, progress: bool = True) -> StudyResult:
    """Run the study and write report.md, the CSVs and the plots into ``out``."""
    check_out(out)
    require_plotting()
    result = run_study(config, progress=progress)
    write_report(result, out, command=command_line(config, out))
    return result


def check_out(out: Path) -> None:
    """Refuse an ``out`` under a file before the study, which can take an hour, rather than
    when its report is written: the folder is made from its nearest existing ancestor."""
    existing = next(path for path in (out, *out.parents) if path.exists())
    if not existing.is_dir():
        raise ConfigError(f"--out {out}: {existing} is a file, not a folder; choose another --out")


def command_line(config: StudyConfig, out: Path) -> str:
    """The command that reproduces ``config`` (cache and progress aside), for the report."""
    words = ["snapfind", "evaluate", "--catalog", str(config.catalog)]
    words += ["--backbones", ",".join(f"{b.name}:{b.weights}" for b in config.backbones)]
    words += ["--runs", str(config.runs), "--out", str(out)]
    if config.seed:
        words += ["--seed", str(config.seed)]
    if config.min_class != 5:
        words += ["--min-class", str(config.min_class)]
    if config.test_fraction != 0.2:
        words += ["--test-fraction", str(config.test_fraction)]
    if config.distractors:
        words += ["--distractors", ",".join(config.distractors)]
    if config.augment_index:
        words += ["--augment-index", str(config.augment_index)]
    if config.augment_queries:
        words.append("--augment-queries")
    if config.input_size:
        words += ["--input-size", str(config.input_size)]
    if config.queries:
        words += ["--queries", str(config.queries)]
    return shlex.join(words)


def outside_line(label: str, scores: OutsideScores) -> str:
    """One line per backbone: the outside photos overall, then P@5 per class."""
    classes = "  ".join(f"{c} {v['p5']:.3f}" for c, v in scores.per_class.items())
    return (
        f"{'':<24} outside photos ({scores.photos}): P@5 {scores.p5:.3f}  top-1 "
        f"{scores.top1:.3f}  macro F1 {scores.f1:.3f}  no match {scores.no_match:.3f}  "
        f"P@5 by class: {classes}"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)
    configure_tensorflow(threads=settings.threads, onednn=settings.onednn)
    config = StudyConfig(
        catalog=args.catalog,
        backbones=parse_backbones(args.backbones, args.weights),
        runs=args.runs,
        seed=args.seed,
        min_class=args.min_class,
        test_fraction=args.test_fraction,
        distractors=tuple(c.strip() for c in (args.distractors or "").split(",") if c.strip()),
        augment_index=args.augment_index,
        augment_queries=args.augment_queries,
        input_size=args.input_size,
        cache=args.cache,
        batch_size=settings.batch_size,
        queries=args.queries,
    )
    result = evaluate(config, args.out, progress=not args.no_progress)
    for b in result.backbones:
        print(
            f"{b.spec.label:<24} Acc@5 {b.mean('acc5'):.3f} ± {b.std('acc5'):.3f}  "
            f"P@5 {b.mean('p5'):.3f} ± {b.std('p5'):.3f}  macro F1 {b.mean('f1'):.3f}  "
            f"{b.ms_per_image:.1f} ms/image  ({b.network}, {b.params:,} params)"
        )
        if b.outside is not None:
            print(outside_line(b.spec.label, b.outside))
    for problem in result.queries.problems if result.queries else ():
        print(f"skipped: {problem}", file=sys.stderr)
    for problem in next((b.outside.problems for b in result.backbones if b.outside), ()):
        print(f"skipped: {problem}", file=sys.stderr)
    print(f"report: {args.out / REPORT_MD}  ({result.seconds / 60:.1f} min)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare backbones on a labelled catalog (report, CSV, plots)",
        description="Drop rare classes, split the catalog 80/20 by class R times (identical "
        "images never on both sides), search the catalog with every query, and report "
        "Top-1/Acc@5/P@5/mAP@10 with their cost per backbone.",
    )
    parser.add_argument(
        "--catalog", type=path_argument, required=True, help="folder tree, CSV or JSONL"
    )
    parser.add_argument(
        "--backbones",
        required=True,
        help="comma-separated; NAME or NAME:WEIGHTS, e.g. efficientnet-lite0,resnet50:none",
    )
    parser.add_argument("--out", type=path_argument, required=True, help="report folder")
    parser.add_argument("--weights", default="imagenet", help="weights where none is given")
    parser.add_argument("--runs", type=int, default=3, help="seeded splits (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run (default 0)")
    parser.add_argument(
        "--min-class", type=int, default=5, help="drop classes with fewer images (default 5)"
    )
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of each class used as queries"
    )
    parser.add_argument(
        "--distractors",
        help="comma-separated catch-all labels: searched, but never queries or matches",
    )
    parser.add_argument(
        "--augment-index", type=int, default=0, metavar="K", help="K augmented copies per image"
    )
    parser.add_argument(
        "--augment-queries", action="store_true", help="crop, tilt and colour-jitter the queries"
    )
    parser.add_argument("--input-size", type=int, help="square input side for every backbone")
    parser.add_argument(
        "--queries",
        type=path_argument,
        metavar="CSV",
        help="outside photos (`photo, category` CSV, paths relative to it) searched against "
        "the whole catalog: P@5, top-1 and macro F1 per class",
    )
    parser.add_argument(
        "--cache",
        type=path_argument,
        default=DEFAULT_CACHE,
        help=f"feature cache (default {DEFAULT_CACHE})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)
