"""Offline screen of the kind head (index/category_head.py) on cached vectors, before building.

Trains W on the pictures `snapfind tune` trains on (clean + cached shopper views), serves it as
the residual head, and replays the product's ranking (kind_sim's replay: one slot per picture,
the nearest product's kind first among 30) on the wild photos, leave-one-out over the held-out
products only, and the augmented copies. Screening only: what wins is measured through the
product by benchmarks/quality_bench.py.

    .venv/bin/python benchmarks/head_sim.py --views benchmarks/out/q13s3/ikea-lite0 \
        --grid "dim=64,hardness=0;dim=64,hardness=1"
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kind_sim import FIVE, KEY, Data, apply, evaluate, kind_first

from index.category_head import CategoryHeadOptions, residual_of, train_kind_map


def load_views(
    folder: Path, hashes: list[str], kind: str = "v"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, vectors) of every cached view file of `kind` (v: shopper, f: furnished)."""
    out = []
    row_of = {h: i for i, h in enumerate(hashes)}
    for names in sorted((folder / "cache").glob(f"tune-{KEY}-s0-{kind}*.json")):
        listed = json.loads(names.read_text())
        vectors = np.load(names.with_suffix(".npy"))
        keep = [i for i, h in enumerate(listed) if h in row_of]
        out.append((np.array([row_of[listed[i]] for i in keep]), vectors[keep]))
    return out


def parse(grid: str) -> list[CategoryHeadOptions]:
    base = CategoryHeadOptions(progress=False)
    out = []
    for item in grid.split(";"):
        fields = dict(pair.split("=") for pair in item.split(",") if pair)
        typed = {k: type(getattr(base, k))(v) for k, v in fields.items()}
        out.append(replace(base, **typed))
    return out


def header(title: str) -> None:
    print(f"\n### {title}")
    print("| variant | P@5 | top1 | " + " | ".join(FIVE) + " | held P@1 | held P@5 | R@1 mild "
          "| R@1 harsh |")  # fmt: skip
    print("|---" * 12 + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/quality13"))
    parser.add_argument("--views", type=Path, required=True)
    parser.add_argument("--queries", type=Path, default=Path("benchmarks/out/quality-cache"))
    parser.add_argument("--grid", default="")
    parser.add_argument("--catalogs", default="ikea5,ikea")
    parser.add_argument("--save", type=Path, help="save the last grid item's residual here")
    parser.add_argument("--scenes", type=int, default=0, help="furnished views to train on")
    parser.add_argument("--shopper", type=int, default=9, help="shopper views to train on")
    parser.add_argument("--identity", type=Path, help="an identity head.npz applied first")
    parser.add_argument("--scales", default="1", help="W scaled by each of these")
    parser.add_argument("--plain", action="store_true", help="also the rows without a head")
    args = parser.parse_args()
    data = Data(args.cache, args.views, args.queries)
    views = load_views(args.views, data.hashes)[: args.shopper]
    views += load_views(args.views, data.hashes, "f")[: args.scenes]
    heads = [("no head", None)] if args.plain else []
    if args.identity:
        with np.load(args.identity) as arrays:
            identity = arrays["residual"]
        data = data.with_head(identity)
        views = [(rows, apply(v, identity)) for rows, v in views]
        heads.append(("identity", None))
    train = np.flatnonzero(~data.held)
    trained = [(rows[~data.held[rows]], v[~data.held[rows]]) for rows, v in views]
    every = np.concatenate([train] + [rows for rows, _ in trained])
    features = np.concatenate([data.X[train]] + [v for _, v in trained])
    categories, pictures = data.cat[every], every
    print(f"{len(views)} views; training rows {len(features)} ({len(train)} pictures)")
    for options in parse(args.grid) if args.grid else []:
        started = time.perf_counter()
        kind_map = train_kind_map(features, categories, pictures, options)
        label = (
            f"dim={options.dim} h={options.hardness} t={options.temperature} "
            f"s={options.steps} decay={options.decay} lr={options.learning_rate}"
        )
        print(
            f"{label}: trained in {time.perf_counter() - started:.1f} s, "
            f"|W|={np.linalg.norm(kind_map):.2f}",
            flush=True,
        )
        for scale in (float(x) for x in args.scales.split(",")):
            heads.append((f"{label} x{scale}", residual_of(kind_map, scale)))
    if args.save and heads[-1][1] is not None:
        np.savez(args.save, residual=heads[-1][1])
    for catalog in args.catalogs.split(","):
        allowed = (
            np.flatnonzero(np.isin(data.cat, FIVE))
            if catalog == "ikea5"
            else np.arange(len(data.ids))
        )
        header(f"{catalog} ({len(allowed)} products)")
        for label, residual in heads:
            d = data if residual is None else data.with_head(residual)
            evaluate(d, f"{label} first stage", None, allowed)
            evaluate(
                d, f"{label} + kind first", kind_first(d, lambda q, o, t=d: t.cat[o[0]]), allowed
            )


if __name__ == "__main__":
    main()
