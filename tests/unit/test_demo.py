"""The demo: data generated, the instant detector fitted and evaluated on first use, reused on a
rerun, refitted when the data or the model changed; ``--no-fit`` leaves the fit to the user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import demo
from pipeline.data.synth import DEFAULT_CATEGORIES, SynthSettings
from pipeline.workspace import Workspace
from tests.conftest import TINY_DEMO


def test_the_demo_workspace_is_marked_fitted_and_evaluated(tiny_demo):
    ws = Workspace.open(tiny_demo / "workspace")
    assert demo.is_demo(ws)
    assert [c.name for c in ws.categories()] == ["pin_tray"]
    record = ws.model_record("pin_tray", demo.DEMO_METHOD)
    assert record is not None and "auroc" in record.metrics
    test_rows = ws.scores("pin_tray", demo.DEMO_METHOD, split="test")
    assert len(test_rows) == 11 and all(row.map_file for row in test_rows)  # Inspect's worst-first list and heat maps
    assert not demo.needs_fit(ws, "pin_tray") and not demo.needs_evaluation(ws, "pin_tray")


def test_a_rerun_reuses_the_fitted_model(tiny_demo, monkeypatch):
    calls = []
    monkeypatch.setattr(demo, "fit_method", lambda *a, **k: calls.append("fit"))
    monkeypatch.setattr(demo, "evaluate_method", lambda *a, **k: calls.append("evaluate"))
    before = Workspace.open(tiny_demo / "workspace").model_record("pin_tray", demo.DEMO_METHOD).created_at
    ws, generated, fitted = demo.prepare_demo(tiny_demo, settings=SynthSettings(out=tiny_demo / "data", **TINY_DEMO))
    assert (generated, fitted, calls) == ((), (), [])
    assert ws.model_record("pin_tray", demo.DEMO_METHOD).created_at == before


def _fake_fit(calls: list[str]):
    """Stand-ins for ``fit_method`` / ``evaluate_method`` that record a model (one file) and metrics."""

    def fit(ws: Workspace, category: str, method: str, **_) -> None:
        calls.append(f"fit {category}")
        (ws.method_dir(category, method) / "bank.bin").write_bytes(b"bank")
        ws.record_model(category, method, {"bank": "bank.bin"}, settings={})

    def evaluate(ws: Workspace, category: str, method: str, **_) -> None:
        calls.append(f"evaluate {category}")
        ws.update_model_metrics(category, method, {"auroc": {"mean": 1.0}})

    return fit, evaluate


@pytest.fixture
def fake_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A tiny demo prepared with the stand-in fit; returns its root and the calls list (emptied)."""
    calls: list[str] = []
    fit, evaluate = _fake_fit(calls)
    monkeypatch.setattr(demo, "fit_method", fit)
    monkeypatch.setattr(demo, "evaluate_method", evaluate)
    _, generated, fitted = demo.prepare_demo(tmp_path, settings=SynthSettings(out=tmp_path / "data", **TINY_DEMO))
    assert generated == fitted == ("pin_tray",) and calls == ["fit pin_tray", "evaluate pin_tray"]
    calls.clear()
    return tmp_path, calls


def _rerun(root: Path) -> tuple[str, ...]:
    return demo.prepare_demo(root, settings=SynthSettings(out=root / "data", **TINY_DEMO))[2]


def test_changed_data_or_a_lost_model_file_is_refitted(fake_demo):
    root, calls = fake_demo
    assert _rerun(root) == () and calls == []
    image = next((root / "data" / "pin_tray" / "train" / "good").glob("*.png"))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # the generator rewrote it
    assert _rerun(root) == ("pin_tray",) and calls == ["fit pin_tray", "evaluate pin_tray"]
    calls.clear()
    (root / "workspace" / "categories" / "pin_tray" / demo.DEMO_METHOD / "bank.bin").unlink()
    assert _rerun(root) == ("pin_tray",) and calls == ["fit pin_tray", "evaluate pin_tray"]


def test_a_model_without_test_metrics_is_only_evaluated(fake_demo):
    root, calls = fake_demo
    ws = Workspace.open(root / "workspace")
    record = ws.model_record("pin_tray", demo.DEMO_METHOD)
    ws.record_model("pin_tray", demo.DEMO_METHOD, record.files, settings={})  # refitted on Train, not evaluated
    assert _rerun(root) == () and calls == ["evaluate pin_tray"]


def test_no_fit_generates_and_marks_only(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "fit_method", lambda *a, **k: pytest.fail("--no-fit must not fit"))
    ws, generated, fitted = demo.prepare_demo(tmp_path, fit=False, settings=SynthSettings(out=tmp_path / "data", **TINY_DEMO))
    assert generated == ("pin_tray",) and fitted == ()
    assert demo.is_demo(ws) and ws.model_record("pin_tray", demo.DEMO_METHOD) is None
    assert not demo.is_demo(Workspace.create(tmp_path / "other"))


def test_the_full_demo_fits_the_quick_categories_only(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(demo, "add_demo_data", lambda ws, settings, progress: ())
    monkeypatch.setattr(demo, "fit_demo_models", lambda ws, names, device, progress: seen.append(names) or names)
    demo.prepare_demo(tmp_path)
    assert seen == [tuple(c for c in DEFAULT_CATEGORIES if c != "fastener_kit")]
