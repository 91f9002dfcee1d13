"""Shared fixtures: a tiny synthetic LOCO dataset generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.data.synth import SynthSettings, generate
from pipeline.models.weights import REGISTRY, SHARED_DIR_ENV

TINY_CATEGORIES = ("pin_tray", "bottle")
TINY_DEMO = dict(categories=("pin_tray",), n_train=8, n_validation=4, n_test_good=4, n_logical=3, n_structural=4, size=128)
"""Demo generator counts for tests: one category, 128 px, fitted in seconds."""


def tiny_synth_settings(out: Path, categories: tuple[str, ...] = TINY_CATEGORIES) -> SynthSettings:
    """Small enough to generate in seconds; 256 px (the method input size) so defects keep their real size."""
    return SynthSettings(
        out=out, categories=categories, seed=3, n_train=10, n_validation=4,
        n_test_good=6, n_logical=4, n_structural=6, size=256,
    )


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root folder holding ``pin_tray`` and ``bottle`` in LOCO layout (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny_synth")
    generate(tiny_synth_settings(out))
    return out


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``prepare_demo`` on the ``TINY_DEMO`` settings, built once: data in ``<root>/data``, the
    marked workspace with the instant detector fitted and evaluated in ``<root>/workspace``
    (read-only for tests)."""
    import torch

    from pipeline.demo import prepare_demo

    root = tmp_path_factory.mktemp("tiny_demo")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepare_demo(root, settings=SynthSettings(out=root / "data", **TINY_DEMO), device="cpu")
    finally:
        torch.set_num_threads(threads)
    return root


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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread during a test: as fast for tiny inputs, and on a busy 2-core machine
    no convolution waits for a descheduled second thread. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
