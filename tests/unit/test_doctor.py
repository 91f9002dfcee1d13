"""doctor: every registry model reported, found or with the exact file expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.doctor import collect_report, format_report
from pipeline.models.weights import REGISTRY, SHARED_DIR_ENV


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No weight variables, empty HOME and TORCH_HOME: the developer's cache can't leak in."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(SHARED_DIR_ENV, raising=False)
    for spec in REGISTRY.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    return tmp_path


def test_report_lists_every_model_and_only_the_embedded_one_is_found(isolated):
    report = collect_report()
    assert [status.key for status in report.models] == list(REGISTRY)
    found = {status.key for status in report.models if status.found}
    assert found == {"efficientnet_lite0"}
    assert report.packages["torch"] == torch.__version__.split("+")[0]
    assert report.device.startswith("cuda" if torch.cuda.is_available() else "cpu (")
    assert any("`ram` package" in note for note in report.notes)


def test_format_report_names_every_expected_file_and_env_var(isolated):
    text = format_report(collect_report())
    for spec in REGISTRY.values():
        assert spec.key in text and spec.env_var in text
        for name in spec.filenames:
            assert name in text
    assert "MISSING" in text and "found" in text
    assert "scikit-learn" in text and "open_clip" in text and "Device" in text


def test_setting_paths_and_the_shared_folder_are_honoured(isolated, monkeypatch):
    sam = isolated / "settings" / "my-sam.pth"
    sam.parent.mkdir()
    sam.write_bytes(b"x")
    shared = isolated / "shared"
    shared.mkdir()
    (shared / "groundingdino_swint_ogc.pth").write_bytes(b"x")
    monkeypatch.setenv(SHARED_DIR_ENV, str(shared))
    report = collect_report({"sam_vit_b": str(sam)})
    status = {s.key: s for s in report.models}
    assert status["sam_vit_b"].path == sam
    assert status["groundingdino"].path == shared / "groundingdino_swint_ogc.pth"
    assert not status["sam_vit_l"].found
    assert str(sam) in format_report(report)


def test_clip_weights_are_reported_with_the_architecture_they_are_read_as(isolated, monkeypatch):
    monkeypatch.delenv("WORKBENCH_CLIP_ARCHITECTURE", raising=False)
    missing = {s.key: s for s in collect_report().models}["open_clip"]
    assert not missing.found and "WORKBENCH_CLIP_WEIGHTS" in missing.message
    weights = isolated / "clip" / "my-clip.bin"
    weights.parent.mkdir()
    torch.save({"logit_scale": torch.tensor(4.6)}, weights)  # the doctor only looks files up, never reads them
    monkeypatch.setenv("WORKBENCH_CLIP_WEIGHTS", str(weights))
    report = collect_report()
    assert {s.key: s for s in report.models}["open_clip"].path == weights
    assert any("architecture ViT-B-16 (the default)" in note for note in report.notes)
    monkeypatch.setenv("WORKBENCH_CLIP_ARCHITECTURE", "ViT-B-32")
    text = format_report(collect_report())
    assert "[found  ] open_clip" in text and "ViT-B-32 (from WORKBENCH_CLIP_ARCHITECTURE)" in text
