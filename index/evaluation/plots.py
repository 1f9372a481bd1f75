"""PNG plots like the original study's: score bars per backbone, and accuracy against cost.

Figures are drawn with matplotlib's object API (``Figure`` + its Agg canvas), so nothing touches
pyplot's global state or needs a display.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib import ticker
from matplotlib.figure import Figure

from index.evaluation.runner import BackboneResult, StudyResult

SCORES_PNG = "scores.png"
PARAMS_PNG = "accuracy_vs_params.png"
LATENCY_PNG = "accuracy_vs_latency.png"
_COLOURS = {"acc5": "#3b6ea8", "p5": "#e08a2c"}
_TITLES = {"acc5": "Top-5 accuracy (Acc@5)", "p5": "Top-5 precision (P@5)"}


def write_plots(result: StudyResult, out: Path) -> list[Path]:
    """Write the three PNGs into ``out``; returns their paths."""
    backbones = result.backbones
    scores = _score_bars(backbones, result.config.runs)
    params = _against(backbones, lambda b: b.params / 1e6, "parameters (millions, log)", True)
    latency = _against(backbones, lambda b: b.ms_per_image, "ms per image (one photo)", False)
    return [
        _save(scores, out / SCORES_PNG),
        _save(params, out / PARAMS_PNG),
        _save(latency, out / LATENCY_PNG),
    ]


def _score_bars(backbones: tuple[BackboneResult, ...], runs: int) -> Figure:
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    labels = [b.spec.label for b in backbones]
    for position, metric in enumerate(("acc5", "p5"), start=1):
        axes = figure.add_subplot(1, 2, position)
        means = [b.mean(metric) or 0.0 for b in backbones]
        errors = [b.std(metric) or 0.0 for b in backbones]
        bars = axes.bar(labels, means, yerr=errors, capsize=6, color=_COLOURS[metric])
        axes.bar_label(bars, labels=[f"{m:.3f}" for m in means], padding=3, fontsize=8)
        axes.set_title(_TITLES[metric])
        axes.set_ylim(0, 1.08)
        axes.set_ylabel(f"mean ± std over {runs} run{'s' if runs != 1 else ''}")
        axes.tick_params(axis="x", labelrotation=20)
        axes.grid(axis="y", alpha=0.3)
    return figure


def _against(
    backbones: tuple[BackboneResult, ...],
    cost: Callable[[BackboneResult], float],
    label: str,
    log_x: bool,
) -> Figure:
    """Acc@5 and P@5 (with error bars) against one cost, one labelled point per backbone."""
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    xs = [cost(b) for b in backbones]
    for metric in ("acc5", "p5"):
        axes.errorbar(
            xs,
            [b.mean(metric) or 0.0 for b in backbones],
            yerr=[b.std(metric) or 0.0 for b in backbones],
            fmt="o",
            capsize=4,
            color=_COLOURS[metric],
            label=_TITLES[metric],
        )
    for i, (x, b) in enumerate(zip(xs, backbones, strict=True)):
        axes.annotate(
            b.spec.label,
            (x, b.mean("acc5") or 0.0),
            textcoords="offset points",
            xytext=(6, 8 if i % 2 == 0 else -16),  # alternate, so close neighbours stay legible
            fontsize=8,
        )
    axes.margins(x=0.2)
    if log_x:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axes.xaxis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        axes.set_xlim(left=0)  # costs compared from zero, not from the cheapest
    axes.set_xlabel(label)
    axes.set_ylabel("score")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    return path
