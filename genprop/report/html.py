"""The HTML report: per case, side by side, original | edited first frame | genprop | baselines | ground truth.

Videos are mp4 files beside the page (relative paths in ``<video>`` tags) with a poster image (their
middle frame), and each case also gets a PNG strip (first, middle and last frame of every column),
so the page shows content where a browser cannot play H.264 (or yuv444p, used for odd sizes).
"""

from __future__ import annotations

import html
import io

import numpy as np
from PIL import Image, ImageDraw

from genprop import storage, video
from genprop.masks import encode_png

ASSETS = "report_files"


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"


def frame_strip(columns: list[tuple[str, np.ndarray]], times: list[int]) -> bytes:
    """A PNG grid: one column per (label, (T, H, W, 3) video or (H, W, 3) image), one row per time."""
    h, w = columns[0][1].shape[-3:-1]
    label_h = 12
    canvas = Image.new("RGB", (w * len(columns), label_h + h * len(times)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (label, arr) in enumerate(columns):
        draw.text((c * w + 2, 0), label[: max(3, w // 6)], fill="black")
        for r, t in enumerate(times):
            img = arr if arr.ndim == 3 else arr[min(t, len(arr) - 1)]
            canvas.paste(Image.fromarray(img), (c * w, label_h + r * h))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def write_report(out: str, cases: list[dict], outputs: dict[str, dict], rows: list[dict], summary: dict,
                 metrics: tuple[str, ...], plots: dict[str, bytes]) -> str:
    """Write ``report.html`` and its assets under ``out``; returns the page's URL.

    Args:
        out (str): the output URL.
        cases (list[dict]): loaded cases (``evaluation.load_case``).
        outputs (dict): {case_id: {method: {"frames", "mask"} or None}}.
        rows (list[dict]): per-case metric rows; summary (dict): {method: {metric: mean}}.
        metrics (tuple[str, ...]): metric names in column order.
        plots (dict[str, bytes]): {file name: PNG bytes} shown under the tables.
    """
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>GenProp evaluation</title><style>",
             "body{font-family:sans-serif;margin:16px}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #bbb;padding:2px 6px;font-size:13px;text-align:right}"
             ".grid{display:flex;gap:6px;flex-wrap:wrap}.cell{text-align:center;font-size:12px}"
             "video,img.poster{width:160px;image-rendering:pixelated;background:#222}"
             "img.strip{image-rendering:pixelated;max-width:100%}</style></head><body>",
             "<h1>GenProp evaluation</h1>", f"<p>{len(cases)} cases; methods: {', '.join(summary)}.</p>",
             "<h2>Mean over cases</h2>", _table(["method", *metrics],
                                                [[m, *(_fmt(summary[m][k]) for k in metrics)] for m in summary])]
    for name in plots:
        storage.write_bytes(storage.join(out, ASSETS, name), plots[name])
        parts.append(f"<img src='{ASSETS}/{name}' alt='{html.escape(name)}'>")
    parts.append("<h2>Per case</h2>")
    parts.append(_table(["case", "task", "method", *metrics],
                        [[r["id"], r["task"], r["method"], *(_fmt(r[k]) for k in metrics)] for r in rows]))
    for case in cases:
        parts.append(_case_section(out, case, outputs[case["case_id"]]))
    parts.append("</body></html>")
    url = storage.join(out, "report.html")
    storage.write_text(url, "\n".join(parts))
    return url


def _table(header: list[str], body: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in body)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _case_section(out: str, case: dict, outputs: dict) -> str:
    cid, fps = case["case_id"], case.get("fps", "12")
    t = len(case["original"])
    columns = [("original", case["original"]), ("edited first frame", case["edited"])]
    columns += [(m, o["frames"]) for m, o in outputs.items() if o is not None]
    columns.append(("ground truth", case["target"]))
    cells = []
    for label, arr in columns:
        stem = label.replace(" ", "_")
        poster_rel = f"{ASSETS}/{cid}/{stem}.png"
        poster = arr if arr.ndim == 3 else arr[t // 2]
        storage.write_bytes(storage.join(out, poster_rel), encode_png(poster))
        if arr.ndim == 3:
            media = f"<img class='poster' src='{poster_rel}' alt='{html.escape(label)}'>"
        else:
            video_rel = f"{ASSETS}/{cid}/{stem}.mp4"
            video.encode(arr, storage.join(out, video_rel), fps)
            media = (f"<video src='{video_rel}' poster='{poster_rel}' controls loop muted autoplay "
                     f"preload='auto' playsinline></video>")
        cells.append(f"<div class='cell'>{media}<br>{html.escape(label)}</div>")
    missing = [m for m, o in outputs.items() if o is None]
    note = f"<p>no output: {', '.join(missing)}</p>" if missing else ""
    strip_rel = f"{ASSETS}/{cid}/strip.png"
    storage.write_bytes(storage.join(out, strip_rel), frame_strip(columns, [0, t // 2, t - 1]))
    return (f"<h3>{html.escape(cid)} ({html.escape(case['task'])}): {html.escape(case.get('prompt', ''))}</h3>"
            f"<div class='grid'>{''.join(cells)}</div>{note}"
            f"<p>frames 0, {t // 2}, {t - 1}:</p><img class='strip' src='{strip_rel}' alt='frame strip'>")
