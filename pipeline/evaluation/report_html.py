"""The plant-manager report as one self-contained HTML file.

Charts are inline SVG drawn here (no JavaScript, no CDN, nothing to download: it opens offline and
prints); images are embedded JPEG data URLs. The report's numbers are also embedded as JSON in
``<script type="application/json" id="report-data">`` so a program can check them.
"""

from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from pipeline.evaluation.report_data import ReportData
from pipeline.metrics.roc import RocCurve
from pipeline.metrics.subtypes import weakest_first

KIND_COLOURS = {"good": "#2ca02c", "logical": "#d62728", "structural": "#1f77b4", "bad": "#9467bd"}
BRANCH_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
PLOT = 300
"""Side of a chart's plotting area in SVG units."""
MARGIN = {"left": 50, "top": 12, "right": 12, "bottom": 42}

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em; } th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
tr.ours td { font-weight: 600; background: #f3f8ff; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; } figure { margin: 0; }
.verdict { font-size: 1.15em; background: #fff8e6; border-left: 4px solid #f0a500; padding: 0.6em 1em; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1em; }
.worst img { width: 160px; height: auto; image-rendering: auto; } .worst figcaption { font-size: 0.9em; color: #444; }
.flagged { color: #b00; font-weight: 600; } .passed { color: #070; font-weight: 600; }
svg text { font-size: 11px; fill: #333; } .note { color: #666; font-size: 0.9em; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _svg_open(title: str, width: int, height: int) -> str:
    return f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">'


def _axes(x_label: str, y_label: str, x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]]) -> str:
    """Frame, ticks (fractions of the plot side) and axis labels."""
    left, top = MARGIN["left"], MARGIN["top"]
    parts = [f'<rect x="{left}" y="{top}" width="{PLOT}" height="{PLOT}" fill="white" stroke="#888"/>']
    for frac, label in x_ticks:
        x = left + frac * PLOT
        parts.append(f'<line x1="{x:.1f}" y1="{top + PLOT}" x2="{x:.1f}" y2="{top + PLOT + 4}" stroke="#888"/>'
                     f'<text x="{x:.1f}" y="{top + PLOT + 16}" text-anchor="middle">{_esc(label)}</text>')
    for frac, label in y_ticks:
        y = top + PLOT - frac * PLOT
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#888"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(label)}</text>')
    parts.append(f'<text x="{left + PLOT / 2}" y="{top + PLOT + 34}" text-anchor="middle">{_esc(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {top + PLOT / 2}) rotate(-90)" text-anchor="middle">{_esc(y_label)}</text>')
    return "".join(parts)


def _xy(fx: float, fy: float) -> tuple[float, float]:
    """Plot fractions (0..1, y up) -> SVG coordinates."""
    return MARGIN["left"] + fx * PLOT, MARGIN["top"] + PLOT - fy * PLOT


def roc_points(curve: RocCurve) -> str:
    """SVG ``points`` of a ROC curve (4 decimals: the test reads the curve back from them)."""
    return " ".join("{:.4f},{:.4f}".format(*_xy(float(x), float(y))) for x, y in zip(curve.fpr, curve.tpr))


def roc_svg(title: str, curves: dict[str, RocCurve], colours: dict[str, str], aurocs: dict[str, float | None]) -> str:
    """ROC chart: one polyline per curve (``data-name``), a chance diagonal and a legend."""
    ticks = [(t / 5, f"{t / 5:.1f}") for t in range(6)]
    width = MARGIN["left"] + PLOT + MARGIN["right"] + 170
    height = MARGIN["top"] + PLOT + MARGIN["bottom"]
    parts = [_svg_open(title, width, height), f"<title>{_esc(title)}</title>",
             _axes("false positive rate (good parts flagged)", "true positive rate (defects caught)", ticks, ticks)]
    (x0, y0), (x1, y1) = _xy(0, 0), _xy(1, 1)
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#aaa" stroke-dasharray="4 3"/>')
    for i, (name, curve) in enumerate(curves.items()):
        colour = colours.get(name, BRANCH_COLOURS[i % len(BRANCH_COLOURS)])
        parts.append(f'<polyline class="roc" data-name="{_esc(name)}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{roc_points(curve)}"/>')
        lx, ly = MARGIN["left"] + PLOT + 12, MARGIN["top"] + 14 + 18 * i
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="14" height="4" fill="{colour}"/>'
                     f'<text x="{lx + 20}" y="{ly - 3}">{_esc(name)} ({_pct(aurocs.get(name))})</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(kinds: list[str], scores: list[float], threshold: float | None, bins: int = 30) -> str:
    """Score histogram per kind (overlaid bars, ``data-kind``) with the threshold as a dashed line."""
    values = list(scores) + ([threshold] if threshold is not None else [])
    lo, hi = float(min(values)), float(max(values))
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    present = [k for k in KIND_COLOURS if k in kinds]
    counts = {k: np.histogram([s for kk, s in zip(kinds, scores) if kk == k], bins=edges)[0] for k in present}
    top = max(1, max(int(c.max()) for c in counts.values()))
    x_ticks = [(t / 4, f"{lo + t / 4 * (hi - lo):.3g}") for t in range(5)]
    y_ticks = [(v / top, str(v)) for v in sorted({0, math.ceil(top / 2), top})]
    width = MARGIN["left"] + PLOT + MARGIN["right"] + 110
    height = MARGIN["top"] + PLOT + MARGIN["bottom"]
    parts = [_svg_open("score histogram", width, height), "<title>Image scores: good vs bad</title>",
             _axes("image score", "images", x_ticks, y_ticks)]
    bar = PLOT / bins
    for i, kind in enumerate(present):
        for j, n in enumerate(counts[kind]):
            if n:
                x, y = _xy(j / bins, n / top)
                parts.append(f'<rect class="bar" data-kind="{kind}" data-count="{int(n)}" x="{x:.2f}" y="{y:.2f}" '
                             f'width="{bar:.2f}" height="{n / top * PLOT:.2f}" fill="{KIND_COLOURS[kind]}" fill-opacity="0.55"/>')
        lx, ly = MARGIN["left"] + PLOT + 12, MARGIN["top"] + 14 + 18 * i
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="10" fill="{KIND_COLOURS[kind]}" fill-opacity="0.55"/>'
                     f'<text x="{lx + 18}" y="{ly}">{kind} ({kinds.count(kind)})</text>')
    if threshold is not None:
        x, _ = _xy((threshold - lo) / (hi - lo), 0)
        parts.append(f'<line class="threshold" data-value="{threshold:.6g}" x1="{x:.2f}" y1="{MARGIN["top"]}" x2="{x:.2f}" '
                     f'y2="{MARGIN["top"] + PLOT}" stroke="#000" stroke-dasharray="5 3"/>'
                     f'<text x="{x + 3:.2f}" y="{MARGIN["top"] + 12}">threshold</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None, table_id: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        f'<tr class="{_esc(cls)}">' + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>"
        for row, cls in zip(rows, classes or [""] * len(rows))
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _counts_section(data: ReportData) -> str:
    labels = {"train": "good training images", "validation": "good validation images", "test_good": "good test images",
              "test_logical": "test images with logical defects", "test_structural": "test images with structural defects",
              "test_bad": "bad test images (unsorted)"}
    rows = [[labels.get(k, k), str(v)] for k, v in data.counts.items()]
    return "<h2>Data</h2>" + _table(["images", "count"], rows, table_id="counts")


def _auroc_section(data: ReportData) -> str:
    rows = [[r["method"], r["category"], *(_pct(r.get(k)) for k in ("logical", "structural", "mean"))] for r in data.auroc_rows]
    classes = ["ours" if r["category"] == data.category else "" for r in data.auroc_rows]
    aupro = ""
    if any(v is not None for v in data.aupro.values()):
        aupro = (f'<p>Pixel AUPRO up to 5 % false-positive rate (where masks exist): logical {_pct(data.aupro.get("logical"))}, '
                 f'structural {_pct(data.aupro.get("structural"))}, mean {_pct(data.aupro.get("mean"))} %.</p>')
    return ("<h2>How well it separates good from bad (image AUROC, %)</h2>"
            "<p>100 = every defective part scores above every good part; 50 = no better than chance.</p>"
            + _table(["method", "category", "logical", "structural", "mean"], rows, classes, table_id="auroc")
            + aupro + f'<p class="note">{_esc(data.reference_note)}</p>')


def _subtype_section(data: ReportData) -> str:
    if not data.subtypes:
        return ""
    rows = [[name, row["kind"], str(row["n"]), _pct(row["auroc"])] for name, row in weakest_first(data.subtypes)]
    return ("<h2>Per anomaly type (image AUROC, %)</h2><p>Each defect type of the synthetic data against the good "
            "test images, weakest first: a low row is a defect this detector misses.</p>"
            + _table(["anomaly type", "kind", "images", "AUROC"], rows, table_id="subtypes"))


def _roc_section(data: ReportData) -> str:
    charts = [roc_svg("ROC curves per defect kind", data.roc, KIND_COLOURS, {k: data.auroc.get(k) for k in data.roc})]
    titles = ['<figure id="roc-kinds">' + charts[0] + "<figcaption>ROC curve per defect kind vs good parts</figcaption></figure>"]
    for kind, curves in data.branch_roc.items():
        aurocs = {b: data.branch_auroc.get(b, {}).get(kind) for b in curves}
        svg = roc_svg(f"ROC curves per branch: {kind} vs good", curves, {}, aurocs)
        titles.append(f'<figure id="roc-branches-{_esc(kind)}">{svg}<figcaption>Per branch: {_esc(kind)} defects vs good parts'
                      "</figcaption></figure>")
    return "<h2>ROC curves</h2><div class=\"charts\">" + "".join(titles) + "</div>"


def _threshold_section(data: ReportData) -> str:
    summary = data.threshold
    hist = histogram_svg(data.kinds, data.scores, None if summary is None else summary.value)
    if summary is None:
        text = "<p>No threshold is stored yet: fit the method (it sets a default) or choose one on the Evaluate page.</p>"
    else:
        text = (f'<p class="verdict" id="threshold-sentence">Threshold <b>{summary.value:.4g}</b>: '
                f"{_esc(summary.sentence())}.</p>"
                "<p>A part is flagged when its score is above the threshold. Raising it flags fewer good parts "
                "and lets more defective ones pass.</p>")
    text += _fusion_paragraph(data.fusion)
    return f'<h2>Threshold: what it means on the line</h2>{text}<figure id="histogram">{hist}<figcaption>Image scores of the test ' \
           "images, good vs defective</figcaption></figure>"


def _fusion_paragraph(fusion: dict | None) -> str:
    """How the branch scores are fused when a few-shot calibration exists, with both fusions' AUROC."""
    if not fusion:
        return ""
    weights = ", ".join(f"{_esc(b)} {w:.2f}" for b, w in fusion["weights"].items())
    scored = "calibrated" if fusion["active"] == "calibrated" else "equal"
    auroc = " vs ".join(f"{name} weights {_pct(fusion[name].get('mean'))} %" for name in ("equal", "calibrated"))
    return (f'<p id="fusion-sentence">Branch scores are fused with <b>{scored}</b> weights. A few-shot calibration on '
            f"{fusion['n_marked']} parts marked bad gave weights {weights} ({_esc(fusion['reason'])}). Mean image AUROC "
            f"on the test parts that were not marked: {auroc}.</p>")


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _gallery_section(data: ReportData) -> str:
    if not data.gallery:
        return "<h2>Worst images</h2><p>No stored heat maps: evaluate again to keep them.</p>"
    cells = []
    for rank, item in enumerate(data.gallery, 1):
        verdict = "" if item.flagged is None else (
            '<span class="flagged">flagged</span>' if item.flagged else '<span class="passed">passes</span>')
        cells.append(
            f'<figure class="worst" data-key="{_esc(item.key)}" data-score="{item.score:.6g}">'
            f'<img alt="{_esc(item.key)}" src="{_data_url(item.image_jpeg)}">'
            f'<img alt="heat map of {_esc(item.key)}" src="{_data_url(item.overlay_jpeg)}">'
            f"<figcaption>#{rank} · {_esc(item.key)} · truth: {_esc(item.kind)} · score {item.score:.4g} {verdict}</figcaption></figure>"
        )
    scale = ""
    if data.colour_bar_jpeg:
        scale = (f'<p class="colour-scale"><img alt="colour scale" src="{_data_url(data.colour_bar_jpeg)}" '
                 f'style="width:256px;height:14px;vertical-align:middle"> {_esc(data.colour_caption)}</p>')
    return ("<h2>Worst images</h2><p>The highest-scoring test images; bright areas in the heat map are what "
            "looks least like the good parts.</p>" + scale + "<div class=\"gallery\">" + "".join(cells) + "</div>")


def render_report(data: ReportData) -> str:
    """The whole report page."""
    settings = ", ".join(f"{k} {v}" for k, v in data.settings.items())
    payload = json.dumps(data.to_dict()).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Inspection report: {_esc(data.category)} ({_esc(data.method)})</title><style>{CSS}</style></head><body>"
        f"<h1>Inspection report: {_esc(data.category)}</h1>"
        f'<p class="sub">Method: <b>{_esc(data.method_title)}</b> (<code>{_esc(data.method)}</code>)'
        f'{" · " + _esc(settings) if settings else ""} · written {_esc(data.generated)}</p>'
        + _counts_section(data) + _auroc_section(data) + _subtype_section(data) + _roc_section(data) + _threshold_section(data)
        + _gallery_section(data)
        + f'<script type="application/json" id="report-data">{payload}</script></body></html>'
    )
