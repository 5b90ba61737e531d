"""The metric tables as Markdown, for the terminal and for ``summary.md``: by task (methods × task columns) and over
all cases (methods × the metrics defined on every case)."""

from __future__ import annotations

from genprop.report.evaluation import METHODS

# (task, metric) columns of the table by task: each task's headline metrics (every metric of a task is in
# metrics.json's ``by_task`` and in the HTML report)
TASK_COLUMNS = (("remove", "psnr_gt"), ("remove", "psnr_effect"), ("remove", "psnr_m"), ("replace", "psnr_gt"),
                ("insert", "psnr_gt"), ("background", "psnr_gt"), ("track", "iou"))
UNDEFINED = "—"  # the metric is not defined for this method on this task
UNKNOWN = "n/a"  # defined, but no value (a missing prediction; CLIP without a CLIP model)
IOU_NOTE = ("track iou: tracking cases only, against the object with its effects; genprop (painted change), "
            "genprop_raw, flow_warp and identity: the painted change segmented from their frames; "
            "genprop (MPD mask): the MPD's mask (`<id>_mpd.mp4`); track_inpaint: the region its tracker tracked.")


def _cell(value, n: int | None = None, of: int | None = None) -> str:
    if value is None:
        return UNKNOWN
    text = f"{value:.3f}"
    return text if n is None or of is None or n >= of else f"{text} (n={n})"


def metric_table(summary: dict, metrics: tuple[str, ...] | list[str], counts: dict | None = None,
                 total: int | None = None) -> str:
    """A Markdown table of ``summary`` ({method: {metric: mean or None}}); unknown values print as ``n/a``.

    Args:
        summary (dict): ``metrics.json``'s ``summary``.
        metrics (tuple[str, ...] | list[str]): the columns, in order.
        counts (dict | None): {method: {metric: n}}, ``metrics.json``'s ``counts``; a mean over fewer than
            ``total`` cases shows its count.
        total (int | None): the number of cases.
    """
    counts = counts or {}
    lines = ["| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for method, values in summary.items():
        cells = [_cell(values.get(m), counts.get(method, {}).get(m), total) for m in metrics]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_table(by_task: dict, labels: dict | None = None,
               columns: tuple[tuple[str, str], ...] = TASK_COLUMNS) -> str:
    """A Markdown table by task: a row per method (named by ``labels``), a column per (task, metric) of
    ``columns`` that the evaluation has, headed by the number of cases where the metric is defined; a mean over
    fewer cases shows its count, a metric not defined for a method is ``—``, one without a value ``n/a``.

    Args:
        by_task (dict): ``metrics.json``'s ``by_task``.
        labels (dict | None): {method: row name} (default: the method's name).
        columns (tuple): (task, metric) pairs, in order.
    """
    labels = labels or {}
    shown = [(t, m) for t, m in columns if m in by_task.get(t, {}).get("defined", {})]
    seen = {k for t, _ in shown for k in by_task[t]["summary"]}
    methods = [k for k in METHODS if k in seen] + sorted(seen - set(METHODS))
    header = [f"{t} {m} (n={by_task[t]['defined'][m]})" for t, m in shown]
    lines = ["| method | " + " | ".join(header) + " |", "|---|" + "---|" * len(shown)]
    for method in methods:
        cells = []
        for t, m in shown:
            values = by_task[t]["summary"].get(method, {})
            cells.append(_cell(values[m], by_task[t]["counts"][method][m], by_task[t]["defined"][m])
                         if m in values else UNDEFINED)
        if any(c != UNDEFINED for c in cells):
            lines.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
