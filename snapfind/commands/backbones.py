"""`snapfind backbones`: the extractors one can choose, with their cost."""

import argparse

from retrieval.backbones import BACKBONES
from retrieval.settings import load_settings


def list_backbones() -> list[dict[str, object]]:
    """One row per registered backbone."""
    return [
        {
            "name": b.name,
            "input": b.input_size,
            "dim": b.dim,
            "params_m": round(b.params / 1e6, 1),
            "weights": "packaged" if b.packaged_weights else "keras download",
        }
        for b in sorted(BACKBONES.values(), key=lambda b: b.params)
    ]


def run(args: argparse.Namespace) -> int:
    default = load_settings().backbone
    print(f"{'backbone':<20} {'input':>5} {'dim':>5} {'params':>8}  imagenet weights")
    for row in list_backbones():
        mark = " (default)" if row["name"] == default else ""
        print(
            f"{row['name']:<20} {row['input']:>5} {row['dim']:>5} {row['params_m']:>7}M"
            f"  {row['weights']}{mark}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backbones", help="list the feature extractors")
    parser.set_defaults(run=run)
