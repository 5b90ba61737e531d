"""The metric table (methods × metrics) as Markdown, for the terminal and for ``summary.md``."""

from __future__ import annotations


def metric_table(summary: dict, metrics: tuple[str, ...] | list[str]) -> str:
    """A Markdown table of ``summary`` ({method: {metric: mean or None}}); unknown values print as ``n/a``.

    Args:
        summary (dict): ``metrics.json``'s ``summary``.
        metrics (tuple[str, ...] | list[str]): the columns, in order.
    """
    lines = ["| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for method, values in summary.items():
        cells = ["n/a" if values.get(m) is None else f"{values[m]:.3f}" for m in metrics]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
