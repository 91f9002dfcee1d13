"""Fixtures for the model tests: a weight-lookup environment the developer's machine can't leak into."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.models.weights import REGISTRY, SHARED_DIR_ENV


@pytest.fixture
def isolated_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point HOME and TORCH_HOME at empty temp folders and clear every weight variable.

    Returns the torch hub checkpoint folder the registry will search (not created).
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(SHARED_DIR_ENV, raising=False)
    for spec in REGISTRY.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"
