"""The HTML report: the metric tables by task, then per case, side by side, original | edited first frame | genprop |
baselines | ground truth.

The page fits a 1400 px window: charts are at most :data:`~genprop.report.plots.MAX_WIDTH` pixels wide and every
image declares its size. Small clips are shown upscaled with nearest-neighbour (short side at least
:data:`MIN_FRAME` pixels; the files themselves are upscaled, and ``image-rendering: pixelated`` covers any browser
scaling). Videos are mp4 files beside the page (relative paths in ``<video>`` tags) with a poster image (their
middle frame), and each case also gets a PNG strip (first, middle and last frame of every column, labelled in
full), so the page shows content where a browser cannot play H.264 (or yuv444p, used for odd sizes).
"""

from __future__ import annotations

import html
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genprop import storage, video
from genprop.masks import encode_png
from genprop.report.evaluation import LABELS, MASK_METHODS, defined_metrics
from genprop.report.plots import MAX_WIDTH
from genprop.report.table import IOU_NOTE, UNDEFINED, UNKNOWN

ASSETS = "report_files"
MIN_FRAME = 128  # pixels: the short side a clip is shown at, at least (32x32 clips: 4x)
MAX_CELL = 320  # pixels: the widest a clip is shown in the grid of videos
STRIP_GAP = 4  # pixels between the strip's columns


def _fmt(v, n: int | None = None, of: int | None = None) -> str:
    if v is None:
        return UNKNOWN
    text = f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return text if n is None or of is None or n >= of else f"{text} (n={n})"


def upscale_factor(height: int, width: int) -> int:
    """The integer nearest-neighbour factor that shows an (H, W) frame with its short side >= :data:`MIN_FRAME`
    (1 for frames that large already)."""
    return max(1, math.ceil(MIN_FRAME / max(1, min(height, width))))


def upscale(arr: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W, 3) frames repeated ``factor`` times along H and W (nearest-neighbour)."""
    if factor == 1:
        return arr
    return np.repeat(np.repeat(arr, factor, axis=-3), factor, axis=-2)


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # a Pillow without sized default fonts
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """``text`` in lines at most ``width`` pixels wide: broken at spaces and after underscores, a longer word by
    characters (never cut off)."""
    def fits(s: str) -> bool:
        return draw.textlength(s, font=font) <= width

    pieces: list[tuple[str, bool]] = []  # (text, starts a word)
    for word in text.split():
        parts = [p + "_" for p in word.split("_")[:-1]] + [word.split("_")[-1]]
        first = True
        for p in (p for p in parts if p):
            while not fits(p) and len(p) > 1:
                k = max((i for i in range(1, len(p)) if fits(p[:i])), default=1)
                pieces.append((p[:k], first))
                p, first = p[k:], False
            pieces.append((p, first))
            first = False
    lines: list[str] = []
    for piece, starts_word in pieces:
        joined = lines[-1] + (" " if starts_word else "") + piece if lines else piece
        if lines and fits(joined):
            lines[-1] = joined
        else:
            lines.append(piece)
    return lines or [""]


def frame_strip(columns: list[tuple[str, np.ndarray]], times: list[int], max_width: int = MAX_WIDTH) -> bytes:
    """A PNG grid: one column per (label, (T, H, W, 3) video or (H, W, 3) image), one row per time.

    Frames are upscaled with nearest-neighbour (:func:`upscale_factor`); labels are wrapped to the column's width,
    never cut; columns that do not fit in ``max_width`` pixels continue in a band below.
    """
    h, w = columns[0][1].shape[-3:-1]
    factor = upscale_factor(h, w)
    if w * factor > max_width:  # a frame wider than the page: shown at the page's width
        factor = 1
    cw, ch = w * factor, h * factor
    scale_down = cw > max_width
    if scale_down:
        cw, ch = max_width, max(1, round(h * max_width / w))
    per_band = max(1, (max_width + STRIP_GAP) // (cw + STRIP_GAP))
    bands = [columns[i:i + per_band] for i in range(0, len(columns), per_band)]
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = int(font.getbbox("Ag")[3]) + 3
    labels = [_wrap(probe, label, font, cw - 4) for label, _ in columns]
    label_h = line_h * max(len(x) for x in labels) + 4
    band_h = label_h + ch * len(times)
    ncols = min(len(columns), per_band)
    canvas = Image.new("RGB", (ncols * cw + (ncols - 1) * STRIP_GAP, len(bands) * band_h + (len(bands) - 1) * 8),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for b, band in enumerate(bands):
        y0 = b * (band_h + 8)
        for c, (_, arr) in enumerate(band):
            x0 = c * (cw + STRIP_GAP)
            for i, line in enumerate(labels[b * per_band + c]):
                draw.text((x0 + 2, y0 + 2 + i * line_h), line, fill="black", font=font)
            for r, t in enumerate(times):
                img = Image.fromarray(upscale(arr if arr.ndim == 3 else arr[min(t, len(arr) - 1)], factor))
                if scale_down:
                    img = img.resize((cw, ch), Image.Resampling.BOX)
                canvas.paste(img, (x0, y0 + label_h + r * ch))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def _png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def write_report(out: str, cases: list[dict], outputs: dict[str, dict], rows: list[dict], evaluation: dict,
                 metrics: tuple[str, ...], plots: dict[str, bytes]) -> str:
    """Write ``report.html`` and its assets under ``out``; returns the page's URL.

    Args:
        out (str): the output URL.
        cases (list[dict]): loaded cases (``evaluation.load_case``).
        outputs (dict): {case_id: {method: {"frames", "mask"} or None}}.
        rows (list[dict]): per-case metric rows.
        evaluation (dict): ``evaluation.summarise``'s result ("summary", "counts", "by_task").
        metrics (tuple[str, ...]): metric names in column order.
        plots (dict[str, bytes]): {file name: PNG bytes} shown under the tables.
    """
    by_task = evaluation["by_task"]
    task_cases = {t: e["cases"] for t, e in by_task.items()}
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>GenProp evaluation</title><style>",
             "body{font-family:sans-serif;margin:16px;max-width:1368px}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #bbb;padding:2px 6px;font-size:13px;text-align:right}"
             ".wide{max-width:100%;overflow-x:auto}.grid{display:flex;gap:6px;flex-wrap:wrap}"
             ".cell{text-align:center;font-size:12px}img,video{max-width:100%;height:auto}"
             "video,img.poster,img.strip{image-rendering:pixelated;background:#222}img.strip{background:none}"
             "p.note{font-size:12px;color:#444;max-width:1000px}</style></head><body>",
             "<h1>GenProp evaluation</h1>",
             f"<p>{len(cases)} cases ({', '.join(f'{t}: {e}' for t, e in task_cases.items())}); "
             f"methods: {', '.join(dict.fromkeys(r['method'] for r in rows))}.</p>",
             "<h2>By task</h2><p class='note'>Each metric's mean over the cases where it is defined (n: how many; "
             f"(n=k) after a mean over fewer). {UNDEFINED}: not defined for the method on the task; {UNKNOWN}: no "
             f"value (a missing prediction, CLIP without a CLIP model). {html.escape(IOU_NOTE)}</p>"]
    for task, entry in by_task.items():
        shown = list(entry["defined"])
        body = []
        for method, values in entry["summary"].items():
            body.append([LABELS.get(method, method),
                         *(_fmt(values[m], entry["counts"][method][m], entry["defined"][m]) if m in values
                           else UNDEFINED for m in shown)])
        parts.append(f"<h3>{html.escape(task)} ({entry['cases']} cases)</h3>")
        parts.append(_table(["method", *(f"{m} (n={entry['defined'][m]})" for m in shown)], body))
    summary, counts = evaluation["summary"], evaluation["counts"]
    overall = [m for m in metrics if any(m in v for v in summary.values())]
    if overall:
        parts.append(f"<h2>Over all {len(cases)} cases</h2><p class='note'>The metrics defined on every case.</p>")
        parts.append(_table(["method", *overall], [[m, *(_fmt(summary[m][k], counts[m][k], len(cases)) if k in summary[m]
                                                          else UNDEFINED for k in overall)] for m in summary]))
    for name in plots:
        storage.write_bytes(storage.join(out, ASSETS, name), plots[name])
        w, h = _png_size(plots[name])
        parts.append(f"<img class='chart' src='{ASSETS}/{name}' width='{w}' height='{h}' "
                     f"alt='{html.escape(name)}'>")
    parts.append("<h2>Per case</h2>")
    case_by_id = {c["case_id"]: c for c in cases}
    body = []
    for r in rows:
        case = case_by_id.get(r["id"])
        defined = defined_metrics(case, r["method"]) if case is not None else metrics
        if not defined:
            continue
        body.append([r["id"], r["task"], r["method"], *(_fmt(r[k]) if k in defined else UNDEFINED for k in metrics)])
    parts.append(f"<div class='wide'>{_table(['case', 'task', 'method', *metrics], body)}</div>")
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
    t, h, w = case["original"].shape[:3]
    factor = upscale_factor(h, w)
    shown_w = w * factor if factor > 1 else min(w, MAX_CELL)
    shown_h = round(h * shown_w / w)
    size = f"width='{shown_w}' height='{shown_h}'"
    columns = [("original", case["original"]), ("edited first frame", case["edited"])]
    columns += [(m, o["frames"]) for m, o in outputs.items() if o is not None and o.get("frames") is not None]
    columns.append(("ground truth", case["target"]))
    cells = []
    for label, arr in columns:
        stem = label.replace(" ", "_")
        poster_rel = f"{ASSETS}/{cid}/{stem}.png"
        poster = arr if arr.ndim == 3 else arr[t // 2]
        storage.write_bytes(storage.join(out, poster_rel), encode_png(upscale(poster, factor)))
        if arr.ndim == 3:
            media = f"<img class='poster' src='{poster_rel}' {size} alt='{html.escape(label)}'>"
        else:
            video_rel = f"{ASSETS}/{cid}/{stem}.mp4"
            video.encode(upscale(arr, factor), storage.join(out, video_rel), fps)
            media = (f"<video src='{video_rel}' poster='{poster_rel}' {size} controls loop muted autoplay "
                     f"preload='auto' playsinline></video>")
        cells.append(f"<div class='cell'>{media}<br>{html.escape(label)}</div>")
    missing = [m for m, o in outputs.items() if o is None and m not in MASK_METHODS]
    note = f"<p>no output: {', '.join(missing)}</p>" if missing else ""
    strip_rel = f"{ASSETS}/{cid}/strip.png"
    strip = frame_strip(columns, [0, t // 2, t - 1])
    storage.write_bytes(storage.join(out, strip_rel), strip)
    sw, sh = _png_size(strip)
    return (f"<h3>{html.escape(cid)} ({html.escape(case['task'])}): {html.escape(case.get('prompt', ''))}</h3>"
            f"<div class='grid'>{''.join(cells)}</div>{note}"
            f"<p>frames 0, {t // 2}, {t - 1} ({factor}x nearest-neighbour):</p>"
            f"<img class='strip' src='{strip_rel}' width='{sw}' height='{sh}' alt='frame strip'>")
