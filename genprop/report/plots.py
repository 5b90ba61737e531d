"""Matplotlib plots of the evaluation (PNG bytes, at most :data:`MAX_WIDTH` pixels wide; the Agg backend, no display
needed)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from genprop.report.evaluation import METHODS

MAX_WIDTH = 1400  # pixels: the report fits a 1400 px window
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(method: str) -> str:
    """The method's colour, the same in every plot."""
    return f"C{(METHODS.index(method) if method in METHODS else len(METHODS)) % 10}"


def _png(fig, max_width: int = MAX_WIDTH) -> bytes:
    """The figure as PNG, its dpi lowered until the (tight) image is at most ``max_width`` pixels wide."""
    plt = _pyplot()
    dpi = DPI
    for _ in range(4):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        width = Image.open(io.BytesIO(buf.getvalue())).size[0]
        if width <= max_width:
            break
        dpi = math.floor(dpi * max_width / width) - 1
    plt.close(fig)
    return buf.getvalue()


def task_means_plot(by_task: dict, columns: tuple[tuple[str, str], ...], labels: dict | None = None) -> bytes:
    """Bars of each (task, metric) mean per method, a panel per column of the table by task that the evaluation
    has (methods for which the metric is not defined are left out; one without a value shows no bar).

    Args:
        by_task (dict): ``metrics.json``'s ``by_task``.
        columns (tuple): (task, metric) pairs, in order (``table.TASK_COLUMNS``).
        labels (dict | None): {method: name shown}.
    """
    plt = _pyplot()
    labels = labels or {}
    shown = [(t, m) for t, m in columns if m in by_task.get(t, {}).get("defined", {})]
    ncols = max(1, min(4, len(shown)))
    nrows = max(1, math.ceil(len(shown) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, (task, metric) in zip(axes.flat, shown):
        entry = by_task[task]
        methods = [k for k, v in entry["summary"].items() if metric in v]
        vals = [np.nan if entry["summary"][k][metric] is None else entry["summary"][k][metric] for k in methods]
        bars = ax.bar(range(len(methods)), vals, color=[_colour(k) for k in methods])
        ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.3g}" for v in vals], fontsize=7)
        ax.margins(y=0.15)
        ax.set_xticks(range(len(methods)), [labels.get(k, k) for k in methods], rotation=40, ha="right", fontsize=8)
        ax.set_title(f"{task} {metric} (n={entry['defined'][metric]})", fontsize=9)
    fig.suptitle("mean over the cases where each metric is defined", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def per_case_plot(rows: list[dict], metric: str, methods: tuple[str, ...], labels: dict | None = None) -> bytes:
    """Grouped bars of one metric per case and method (cases and methods without a value left out).

    Args:
        rows (list[dict]): the per-case metric rows (id, method, metrics).
        metric (str): the metric.
        methods (tuple[str, ...]): methods in order.
        labels (dict | None): {method: name shown}.
    """
    plt = _pyplot()
    labels = labels or {}
    value = {(r["id"], r["method"]): r[metric] for r in rows}
    cases = [c for c in dict.fromkeys(r["id"] for r in rows) if any(value.get((c, m)) is not None for m in methods)]
    methods = tuple(m for m in methods if any(value.get((c, m)) is not None for c in cases)) or methods[:1]
    fig, ax = plt.subplots(figsize=(min(13.0, max(4.0, 0.55 * len(cases) + 2)), 3))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        vals = [value.get((c, method)) for c in cases]
        ax.bar(np.arange(len(cases)) + i * width, [np.nan if v is None else v for v in vals], width,
               label=labels.get(method, method), color=_colour(method))
    ax.set_xticks(np.arange(len(cases)) + 0.4 - width / 2, cases, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(fig)
