"""Offline screen of second-stage ideas on cached vectors, before building them into the product.

Replays the product's ranking (cosine, one slot per picture, "nearest product's kind first"
among the first 30) in numpy over vectors quality_bench and `snapfind tune` already cached, and
tries what the catalog's category labels can add, honestly: everything learnt from the catalog
is learnt on the 70 % of pictures `snapfind tune` trains on and judged by leave-one-out on the
30 % it holds out (`held`); wild photos are never trained on.

- *classifier kind first*: a softmax classifier over the categories (clean + shopper-view
  features of the training pictures) picks the kind that goes first;
- *nearest + classifier*: the nearest product stays first (exact-product recall unchanged) and
  the kind is argmax(votes of the first `voters` products + gamma * classifier probability);
- *head*: a saved `head.npz` applied to every vector (`--heads`), e.g. a tuned head, or one
  scaled towards the identity.

Screening only: a variant that wins here is then built and measured through the product's calls
by benchmarks/quality_bench.py, which is what docs/quality.md quotes as results.

    .venv/bin/python benchmarks/kind_sim.py --cache /work/cache/quality13 \
        --tuned /work/cache/quality13/tuned/ikea-lite0 --heads A.npz,B.npz

(--cache: the plain index and its build cache; --tuned: the index `snapfind tune` ran on, for
its cached shopper views; --queries: quality_bench's cached query vectors.)
"""

import argparse
import csv
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.tune import held_out
from retrieval.model_input import DECODING

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIVE = ("bed", "sofa", "chair", "table", "wardrobe")
KEY = "f2c19961bcc1ea1c"  # efficientnet-lite0, plain: quality_bench's and the build's cache key
Stage = Callable[[np.ndarray, list[int]], list[int]] | None


class Data:
    """The full IKEA index's products, their plain vectors, and the cached query vectors."""

    def __init__(self, cache: Path, tuned: Path, queries_dir: Path) -> None:
        release = cache / "indexes" / "ikea-lite0" / "current"
        db = sqlite3.connect(release / "products.sqlite")
        rows = db.execute("SELECT id, categories FROM products ORDER BY row").fetchall()
        self.ids = [pid for pid, _ in rows]
        self.cat = np.array([(json.loads(c) or ["other"])[0] for _, c in rows])
        picture = {}
        for row, digest in db.execute(
            "SELECT product_row, content_hash FROM images ORDER BY vector_id DESC"
        ):
            picture[row] = digest
        self.hashes = [picture[r] for r in range(len(rows))]
        vectors = sqlite3.connect(cache / "indexes" / "ikea-lite0" / "cache" / f"{KEY}.sqlite")
        plain = {
            h: np.frombuffer(b, np.float32) for h, b in vectors.execute("SELECT * FROM vectors")
        }
        self.X = np.stack([plain[h] for h in self.hashes])  # (P, D)
        view_hashes = json.loads((tuned / "cache" / f"tune-{KEY}-s0-v0.json").read_text())
        views = dict(
            zip(view_hashes, np.load(tuned / "cache" / f"tune-{KEY}-s0-v0.npy"), strict=True)
        )
        self.V = np.stack([views[h] for h in self.hashes])  # (P, D) one shopper view each
        self.held = np.array([held_out(h) for h in self.hashes])
        queries = f"{KEY}-{DECODING}"  # the names quality_bench caches its query vectors under
        names = json.loads((queries_dir / f"{queries}-wild.json").read_text())
        with (SHARED / "wild" / "photos.csv").open() as handle:
            label = {r["photo"]: r["category"] for r in csv.DictReader(handle)}
        self.wild = np.load(queries_dir / f"{queries}-wild.npy")
        self.wild_labels = np.array([label[n] for n in names])
        self.augs = {
            kind: (
                np.load(queries_dir / f"{queries}-aug-{kind}300.npy"),
                json.loads((queries_dir / f"{queries}-aug-{kind}300.json").read_text()),
            )
            for kind in ("mild", "harsh")
        }
        self.row_of = {pid: i for i, pid in enumerate(self.ids)}

    def with_head(self, residual: np.ndarray) -> "Data":
        view = object.__new__(Data)
        view.__dict__ = dict(self.__dict__)
        view.X, view.V, view.wild = (
            apply(self.X, residual),
            apply(self.V, residual),
            apply(self.wild, residual),
        )
        view.augs = {k: (apply(a, residual), n) for k, (a, n) in self.augs.items()}
        return view


def apply(features: np.ndarray, residual: np.ndarray) -> np.ndarray:
    projected = features + features @ residual
    return (projected / np.linalg.norm(projected, axis=1, keepdims=True)).astype(np.float32)


def rank(d: Data, query: np.ndarray, allowed: np.ndarray, k: int, stage: Stage, skip=()) -> list:
    """The first-stage page (one product per picture, 30 deep), then `stage`, cut to k."""
    order = allowed[np.argsort(-(d.X[allowed] @ query))]
    seen, out = set(), []
    for row in order:
        if row in skip or d.hashes[row] in seen:
            continue
        seen.add(d.hashes[row])
        out.append(int(row))
        if len(out) == 30:
            break
    return (stage(query, out) if stage else out)[:k]


def kind_first(d: Data, kind_of: Callable[[np.ndarray, list[int]], str]) -> Stage:
    """Products of the chosen kind first among the 30, the nearest product kept first."""

    def stage(query: np.ndarray, out: list[int]) -> list[int]:
        kind = kind_of(query, out)
        ordered = sorted(out, key=lambda r: d.cat[r] != kind)
        return [out[0], *(r for r in ordered if r != out[0])]

    return stage


def softmax_classifier(d: Data, rows: np.ndarray, classes: list[str], l2: float = 1e-4):
    """Class-balanced softmax regression on clean + view features of `rows` (gradient descent)."""
    index = {c: i for i, c in enumerate(classes)}
    features = np.concatenate([d.X[rows], d.V[rows]])
    y = np.array([index[d.cat[r]] for r in rows] * 2)
    weights = (len(y) / (len(classes) * np.bincount(y, minlength=len(classes))))[y]
    onehot = np.eye(len(classes))[y]
    w, b = np.zeros((features.shape[1], len(classes))), np.zeros(len(classes))
    for _ in range(300):
        z = (features @ w + b) / 0.05
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) * weights[:, None] / len(y) / 0.05
        w -= 0.5 * (features.T @ g + l2 * w)
        b -= 0.5 * g.sum(0)

    def probabilities(query: np.ndarray) -> np.ndarray:
        z = (query @ w + b) / 0.05
        p = np.exp(z - z.max())
        return p / p.sum()

    return probabilities


def evaluate(d: Data, name: str, stage: Stage, allowed: np.ndarray) -> None:
    sizes = {c: int((d.cat[allowed] == c).sum()) for c in set(d.cat[allowed])}
    p5 = {c: [] for c in FIVE}
    top1 = []
    for query, label in zip(d.wild, d.wild_labels, strict=True):
        cats = d.cat[rank(d, query, allowed, 5, stage)]
        p5[label].append(float(np.mean(cats == label)))
        top1.append(cats[0] == label)
    loo1, loo5 = [], []
    for row in allowed:
        if not d.held[row] or d.cat[row] == "other" or sizes[d.cat[row]] < 5:
            continue
        twins = {int(r) for r in allowed if d.hashes[r] == d.hashes[row]}
        cats = d.cat[rank(d, d.X[row], allowed, 5, stage, twins)]
        loo1.append(cats[0] == d.cat[row])
        loo5.append(float(np.mean(cats == d.cat[row])))
    inside = set(allowed.tolist())
    recall = {}
    for kind, (vectors, ids) in d.augs.items():
        found = [
            d.hashes[rank(d, v, allowed, 1, stage)[0]] == d.hashes[d.row_of[pid]]
            for v, pid in zip(vectors, ids, strict=True)
            if d.row_of[pid] in inside
        ]
        recall[kind] = float(np.mean(found))
    every = [v for values in p5.values() for v in values]
    print(
        f"| {name} | {np.mean(every):.3f} | {np.mean(top1):.3f} | "
        + " | ".join(f"{np.mean(p5[c]):.3f}" for c in FIVE)
        + f" | {np.mean(loo1):.3f} | {np.mean(loo5):.3f} | {recall['mild']:.3f} | "
        f"{recall['harsh']:.3f} |",
        flush=True,
    )


def mixed(d: Data, probabilities, classes: list[str], voters: int, gamma: float) -> Stage:
    """Kind = argmax(votes of the first `voters` products + gamma x classifier probability)."""

    def kind_of(query: np.ndarray, out: list[int]) -> str:
        score = gamma * probabilities(query)
        for row in out[:voters]:
            score[classes.index(d.cat[row])] += 1 / voters
        return classes[int(np.argmax(score))]

    return kind_first(d, kind_of)


def screen(data: Data, catalog: str, allowed: np.ndarray, heads: list[str]) -> None:
    print(f"\n### {catalog} ({len(allowed)} products)")
    print("| variant | P@5 | top1 | " + " | ".join(FIVE) + " | held P@1 | held P@5 | R@1 mild "
          "| R@1 harsh |")  # fmt: skip
    print("|---" * 12 + "|")
    classes = sorted(set(data.cat[allowed]))
    trained = np.array([r for r in allowed if not data.held[r]])
    probabilities = softmax_classifier(data, trained, classes)
    evaluate(data, "first stage", None, allowed)
    nearest = kind_first(data, lambda q, o: data.cat[o[0]])
    evaluate(data, "nearest's kind first d30", nearest, allowed)
    evaluate(data, "classifier's kind first", mixed(data, probabilities, classes, 0, 1.0), allowed)
    for voters, gamma in ((1, 1.0), (1, 2.0), (3, 0.0), (3, 1.0)):
        stage = mixed(data, probabilities, classes, voters, gamma)
        evaluate(data, f"{voters} nearest + classifier x{gamma}", stage, allowed)
    for head in heads:
        with np.load(head) as arrays:
            tuned = data.with_head(arrays["residual"])
        stage = kind_first(tuned, lambda q, o, t=tuned: t.cat[o[0]])
        evaluate(tuned, f"head {Path(head).parent.parent.name} + kind first", stage, allowed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/quality13"))
    parser.add_argument(
        "--tuned", type=Path, default=Path("/work/cache/quality13/tuned/ikea-lite0")
    )
    parser.add_argument("--queries", type=Path, default=Path("benchmarks/out/quality-cache"))
    parser.add_argument("--heads", default="", help="comma-separated head.npz files to try")
    args = parser.parse_args()
    data = Data(args.cache, args.tuned, args.queries)
    heads = [h for h in args.heads.split(",") if h]
    screen(data, "ikea5", np.flatnonzero(np.isin(data.cat, FIVE)), heads)
    screen(data, "ikea", np.arange(len(data.ids)), heads)


if __name__ == "__main__":
    main()
