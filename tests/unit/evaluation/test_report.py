"""The HTML report: parsed back, it shows the figures and numbers of the run (the CLI's ``evaluate`` JSON)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.__main__ import main
from pipeline.evaluation import report_html
from pipeline.evaluation.evaluate import save_branch_scores
from pipeline.evaluation.report import auroc_rows, branch_rocs, collect_report, kind_rocs, threshold_summary
from pipeline.methods.runner import fit_method
from pipeline.metrics.reference import REFERENCE_AUROC
from pipeline.metrics.roc import roc_curve
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CATEGORY, METHOD = "pin_tray", "instant"


class _Tree(HTMLParser):
    """Collects every start tag with its attributes, the text of each element id, and the embedded JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str], list[str]]] = []  # (tag, attrs, ids of enclosing elements)
        self._open: list[tuple[str, str | None]] = []
        self.text: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs, [i for _, i in self._open if i]))
        if tag not in ("img", "line", "rect", "polyline", "meta", "br"):
            self._open.append((tag, attrs.get("id")))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}, [i for _, i in self._open if i]))

    def handle_endtag(self, tag):
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] = self.text.get(element_id, "") + data

    def find(self, tag: str, inside: str | None = None, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a, ids in self.tags if t == tag and (inside is None or inside in ids)
                and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def _parse(text: str) -> _Tree:
    tree = _Tree()
    tree.feed(text)
    return tree


def _curve_from_svg(points: str) -> tuple[list[float], list[float]]:
    """SVG points back to (fpr, tpr) with the chart's own geometry."""
    xy = np.array([[float(v) for v in p.split(",")] for p in points.split()])
    fpr = (xy[:, 0] - report_html.MARGIN["left"]) / report_html.PLOT
    tpr = (report_html.MARGIN["top"] + report_html.PLOT - xy[:, 1]) / report_html.PLOT
    return fpr.tolist(), tpr.tolist()


@pytest.fixture(scope="module")
def run(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """instant fitted on tiny pin_tray; ``report`` first (it evaluates what was never evaluated), then
    ``evaluate`` on its own: the report must show the numbers that ``evaluate`` writes."""
    root = tmp_path_factory.mktemp("report")
    ws = Workspace.create(root / "ws")
    ws.add_category(CATEGORY, tiny_synth / CATEGORY, "loco")
    fit_method(ws, CATEGORY, METHOD, device="cpu")
    metrics, report = root / "metrics.json", root / "out" / "report.html"
    common = ["--category", CATEGORY, "--workspace", str(ws.path), "--method", METHOD, "--device", "cpu"]
    assert not ws.scores(CATEGORY, METHOD, split="test")
    assert main(["report", *common, "--out", str(report)]) == 0
    assert ws.scores(CATEGORY, METHOD, split="test")
    assert main(["evaluate", "--data", str(tiny_synth), *common, "--out", str(metrics)]) == 0
    return {"ws": ws.path, "cli": json.loads(metrics.read_text()), "html": report.read_text(), "root": root}


def test_report_shows_the_runs_roc_curves_and_auroc(run):
    tree, cli = _parse(run["html"]), run["cli"]
    polylines = {a["data-name"]: a["points"] for a in tree.find("polyline", inside="roc-kinds")}
    assert set(polylines) == {"logical", "structural"}
    for kind, points in polylines.items():
        fpr, tpr = _curve_from_svg(points)
        assert fpr == pytest.approx(cli["roc"][kind]["fpr"], abs=1e-3)
        assert tpr == pytest.approx(cli["roc"][kind]["tpr"], abs=1e-3)
    table_text = tree.text["auroc"]
    assert f"{CATEGORY}" in table_text and all(name in table_text for name in REFERENCE_AUROC)
    ours = [a for t, a, _ in tree.tags if t == "tr" and a.get("class") == "ours"]
    assert len(ours) == 1
    for k in ("logical", "structural", "mean"):
        assert f"{100 * cli['auroc'][k]:.1f}" in table_text
    data = json.loads(tree.text["report-data"])
    assert data["category"] == CATEGORY and data["method"] == METHOD
    assert data["auroc"] == pytest.approx(cli["auroc"])
    assert data["roc"] == cli["roc"]  # same stored scores, same curve points, exactly
    assert data["aupro"] == pytest.approx(cli["aupro"])


def test_report_lists_each_anomaly_type_weakest_first(run):
    tree, cli = _parse(run["html"]), run["cli"]
    table = cli["subtype_auroc"]
    assert table  # synthetic data names every defect's type
    text = tree.text["subtypes"]
    positions = [text.index(name) for name in table]
    ordered = [name for _, name in sorted(zip(positions, table))]
    assert [table[name]["auroc"] for name in ordered] == sorted(table[name]["auroc"] for name in table)
    for name, row in table.items():
        assert f"{name}{row['kind']}{row['n']}{100 * row['auroc']:.1f}" in text
    assert json.loads(tree.text["report-data"])["subtype_auroc"] == table


def test_report_counts_threshold_and_histogram(run):
    tree, cli = _parse(run["html"]), run["cli"]
    ws = Workspace.open(run["ws"])
    counts = tree.text["counts"]
    for label, n in (("good training images", 10), ("good validation images", 4), ("good test images", cli["n"]["good"]),
                     ("logical defects", cli["n"]["logical"]), ("structural defects", cli["n"]["structural"])):
        assert f"{label}{n}" in counts.replace("test images with ", "")
    summary = threshold_summary(ws, CATEGORY, METHOD, ws.scores(CATEGORY, METHOD, split="test"))
    assert summary.sentence() in tree.text["threshold-sentence"]
    assert f"{summary.value:.4g}" in tree.text["threshold-sentence"]
    [line] = tree.find("line", inside="histogram", **{"class": "threshold"})
    assert float(line["data-value"]) == pytest.approx(summary.value, rel=1e-5)
    bars = tree.find("rect", inside="histogram", **{"class": "bar"})
    for kind in ("good", "logical", "structural"):
        assert sum(int(b["data-count"]) for b in bars if b["data-kind"] == kind) == cli["n"][kind]


def test_report_gallery_holds_the_worst_images_with_heat_maps(run):
    tree = _parse(run["html"])
    ws = Workspace.open(run["ws"])
    worst = ws.scores(CATEGORY, METHOD, split="test")[:8]  # stored worst first
    figures = tree.find("figure", **{"class": "worst"})
    assert [f["data-key"] for f in figures] == [r.image_key for r in worst]
    images = [a for t, a, _ in tree.tags if t == "img" and a.get("alt") != "colour scale"]
    assert len(images) == 2 * len(worst)
    [scale] = [a for t, a, _ in tree.tags if t == "img" and a.get("alt") == "colour scale"]
    assert scale["src"].startswith("data:image/jpeg;base64,")
    assert "red (tick)" in run["html"]  # the caption says where the threshold is
    for img in images:
        assert img["src"].startswith("data:image/jpeg;base64,")
        picture = Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1])))
        assert picture.size == (256, 256)
    photo, heat = (np.asarray(Image.open(io.BytesIO(base64.b64decode(images[i]["src"].split(",", 1)[1])))) for i in (0, 1))
    assert np.abs(photo.astype(int) - heat.astype(int)).mean() > 5  # the second one carries the heat map


def test_report_is_self_contained(run):
    text, tree = run["html"], _parse(run["html"])
    assert not [a for t, a, _ in tree.tags if t in ("script", "link", "iframe") and (a.get("src") or a.get("href"))]
    for _, attrs, _ in tree.tags:
        for key in ("src", "href"):
            assert not attrs.get(key, "").startswith(("http:", "https:", "//")), attrs
    without_images = re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "", text)
    assert "://" not in without_images and "@import" not in without_images  # no URL at all: nothing to fetch


def test_branch_curves_in_the_report(run, tmp_path):
    ws_path = tmp_path / "ws"
    shutil.copytree(run["ws"], ws_path)
    ws = Workspace.open(ws_path)
    rows = ws.scores(CATEGORY, METHOD, split="test")
    branches = [{"lgst_local": -r.score, "histogram_grid": r.score, "z_histogram_grid": 0.0} for r in rows]
    save_branch_scores(ws.method_dir(CATEGORY, METHOD), rows, branches)
    data = collect_report(ws, CATEGORY, METHOD, n_worst=0)
    tree = _parse(report_html.render_report(data))
    for kind in ("logical", "structural"):
        lines = {a["data-name"]: a["points"] for a in tree.find("polyline", inside=f"roc-branches-{kind}")}
        assert set(lines) == {"lgst_local", "histogram_grid"}
        labels = [int(r.kind == kind) for r in rows if r.kind in ("good", kind)]
        expected = roc_curve(labels, [-r.score for r in rows if r.kind in ("good", kind)])
        assert _curve_from_svg(lines["lgst_local"])[0] == pytest.approx(expected.fpr.tolist(), abs=1e-3)
    assert data.branch_auroc["histogram_grid"] == pytest.approx(data.auroc)
    assert data.branch_auroc["lgst_local"]["mean"] == pytest.approx(1 - data.auroc["mean"])


def test_report_cli_errors_are_one_line(run, capsys):
    out = run["root"] / "never.html"
    assert main(["report", "--workspace", str(run["ws"]), "--category", CATEGORY, "--method", "histogram", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no fitted 'histogram' model") and err.count("\n") == 1
    assert not out.exists()
    assert main(["report", "--workspace", str(run["ws"]), "--category", "nope", "--out", str(out)]) == 2
    assert "unknown category 'nope'" in capsys.readouterr().err


def test_kind_and_branch_rocs_skip_kinds_without_both_classes():
    kinds = ["good", "good", "logical", "logical"]
    assert set(kind_rocs(kinds, [0.1, 0.2, 0.9, 0.3])) == {"logical"}
    curves = branch_rocs(kinds, {"a": [0.1, 0.2, 0.9, 0.3], "z_a": [0, 0, 1, 1]})
    assert list(curves) == ["logical"] and list(curves["logical"]) == ["a"]
    assert branch_rocs([], {}) == {}


def test_auroc_rows_average_over_categories(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    for name, value in (("a", 0.8), ("b", 0.6)):
        (tmp_path / name).mkdir()
        ws.add_category(name, tmp_path / name, "loco")
        ws.record_model(name, METHOD, {}, settings={}, metrics={"auroc": {"logical": value, "structural": None, "mean": value}})
    rows = auroc_rows(ws, METHOD)
    assert [r["category"] for r in rows[:3]] == ["a", "b", "average"]
    assert rows[2]["mean"] == pytest.approx(0.7) and rows[2]["structural"] is None
    assert [r["method"] for r in rows[3:]] == list(REFERENCE_AUROC)
    assert rows[3]["mean"] == pytest.approx(REFERENCE_AUROC["AeCSAD (thesis)"]["mean"] / 100)
