"""Matplotlib plots of the evaluation (PNG bytes; the Agg backend, no display needed)."""

from __future__ import annotations

import io

import numpy as np


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def mean_metrics_plot(summary: dict, metrics: tuple[str, ...]) -> bytes:
    """Grouped bars: each metric's mean per method (a metric unknown for every method is left out).

    Args:
        summary (dict): {method: {metric: value or None}}.
        metrics (tuple[str, ...]): which metrics, in order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary)
    shown = [m for m in metrics if any(summary[k][m] is not None for k in methods)]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(2.6 * max(1, len(shown)), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], shown):
        vals = [summary[k][metric] if summary[k][metric] is not None else np.nan for k in methods]
        ax.bar(range(len(methods)), vals, color=["C%d" % i for i in range(len(methods))])
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
    fig.suptitle("mean over cases", fontsize=10, y=1.04)
    return _png(fig)


def per_case_plot(rows: list[dict], metric: str, methods: tuple[str, ...]) -> bytes:
    """Grouped bars of one metric per case and method (missing values left out).

    Args:
        rows (list[dict]): the per-case metric rows (id, method, metrics).
        metric (str): the metric.
        methods (tuple[str, ...]): methods in order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(r["id"] for r in rows))
    value = {(r["id"], r["method"]): r[metric] for r in rows}
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(cases) + 2), 3))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        vals = [value.get((c, method)) for c in cases]
        ax.bar(np.arange(len(cases)) + i * width, [np.nan if v is None else v for v in vals], width, label=method)
    ax.set_xticks(np.arange(len(cases)) + 0.4 - width / 2, cases, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return _png(fig)
