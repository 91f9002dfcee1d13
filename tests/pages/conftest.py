"""Fixtures for the page tests: Streamlit ``AppTest`` runs of the real app on tiny workspaces.

Why ``_mpa_v1`` is patched: the pages live in a folder called ``pages/`` next to the entry
point. Streamlit treats such a folder as a v1 multipage app until ``st.navigation`` has been
called once in the process, and ``AppTest`` forgets that on every run. Without the patch every
``switch_page`` would execute ``pages/<page>.py`` on its own, skipping ``streamlit_app.py``
(page config, ``st.navigation``, the sidebar status). The patch makes each test run take the
path a running server takes once the entry point has been executed: the entry point runs and
``st.navigation`` picks the page.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import runpy
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from pipeline.data.synth import SynthSettings, generate
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.jobs import IMPORTS_ENV
from pipeline.methods import METHODS
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.runner import fit_method
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.pseudolabels import curation, edits
from pipeline.pseudolabels.run import run_pseudo_labels
from pipeline.pseudolabels.settings import PseudoLabelSettings
from pipeline.workspace import Workspace, pid_alive

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
UNIT_TESTS = REPO / "tests" / "unit"
CATEGORY = "pin_tray"
METHOD = "instant"
TIMEOUT = 120
_DEFAULTS = PseudoLabelSettings()
FAST_PL = dataclasses.replace(_DEFAULTS, features=dataclasses.replace(_DEFAULTS.features, variants=False, crop_size=32))
"""Pseudo-label settings for page tests: one small crop per component (the pages, not the quality, are tested)."""


def _run_entry_point(main_script_path: str) -> None:
    PagesManager.uses_pages_directory = False
    runpy.run_path(str(main_script_path), run_name="__main__")


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread: on a busy 2-core machine its thread pool spins and runs several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_torch() -> Iterator[None]:
    with _one_torch_thread():
        yield


@pytest.fixture(autouse=True)
def _through_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(script_runner, "_mpa_v1", _run_entry_point)


class AppRunner:
    """Opens the app and runs it, failing on any exception a page raised."""

    @staticmethod
    def run(at: AppTest) -> AppTest:
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        return at

    def open(self, workspace: Path | str | None, page: str | None = None) -> AppTest:
        """The app with ``workspace`` open, run on the default page, then on ``page`` (``pages/x.py``)."""
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        if workspace is not None:
            at.session_state["workspace_path"] = str(workspace)
        self.run(at)
        if page is not None:
            at.switch_page(page)
            self.run(at)
        return at


@pytest.fixture
def app() -> AppRunner:
    """``app.open(workspace, "pages/train.py")`` and ``app.run(at)``, both asserting no exception."""
    return AppRunner()


@pytest.fixture(scope="session")
def page_workspaces(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Workspaces on the shared tiny ``pin_tray`` data, built once.

    ``data``: category registered, nothing fitted; ``fitted``: instant fitted (validation
    scores and threshold stored), not evaluated; ``evaluated``: fitted and evaluated on the
    test split. Tests that write to one copy it first (``workspace_copy``).
    """
    root = tmp_path_factory.mktemp("page_workspaces")
    ws = Workspace.create(root / "data")
    ws.add_category(CATEGORY, tiny_synth / CATEGORY, "loco")
    shutil.copytree(ws.path, root / "fitted")
    fitted = Workspace.open(root / "fitted")
    with _one_torch_thread():
        fit_method(fitted, CATEGORY, METHOD, device="cpu")
        shutil.copytree(fitted.path, root / "evaluated")
        evaluate_method(Workspace.open(root / "evaluated"), CATEGORY, METHOD, device="cpu")
    return {"data": root / "data", "fitted": root / "fitted", "evaluated": root / "evaluated"}


@pytest.fixture
def workspace_copy(page_workspaces: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    """``workspace_copy("fitted")``: a private copy of a prepared workspace for a test to change."""

    def copy(name: str) -> Path:
        target = tmp_path / f"ws_{name}"
        shutil.copytree(page_workspaces[name], target)
        return target

    return copy


@pytest.fixture(scope="session")
def pl_workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Workspaces for the Tags, Masks and Clusters pages on 4 tiny (128 px) ``pin_tray`` images.

    ``ready``: category registered and ``FAST_PL`` stored as the last-used settings (the Masks page
    starts from them), nothing built; ``built``: the same after one pseudo-label run (classic
    segmenter, no detector) with at least two clusters. Copy one (``pl_copy``) to change it.
    """
    root = tmp_path_factory.mktemp("pl_pages")
    generate(SynthSettings(out=root / "data", categories=(CATEGORY,), seed=3, n_train=4, n_validation=1,
                           n_test_good=1, n_logical=1, n_structural=1, size=128))
    ws = Workspace.create(root / "ready")
    ws.add_category(CATEGORY, root / "data" / CATEGORY, "loco")
    ws.set_setting(edits.SETTINGS, FAST_PL.to_dict(), category=CATEGORY)
    shutil.copytree(ws.path, root / "built")
    built = Workspace.open(root / "built")
    with _one_torch_thread():
        summary = run_pseudo_labels(built, CATEGORY, FAST_PL, detector="none", segmenter="classic", device="cpu")
    if len(summary.cluster_sizes) < 2:  # the tests merge and move: they need two clusters, not a given count
        curation.split_cluster(built, CATEGORY, max(summary.cluster_sizes, key=summary.cluster_sizes.get), 2)
    return {"ready": root / "ready", "built": root / "built"}


@pytest.fixture
def pl_copy(pl_workspaces: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    """``pl_copy("built")``: a private copy of a pseudo-label workspace for a test to change."""

    def copy(name: str) -> Path:
        target = tmp_path / f"pl_{name}"
        shutil.copytree(pl_workspaces[name], target)
        return target

    return copy


# --- AeCSAD (every branch map) and background jobs -----------------------------------------

def _shrink(monkeypatch: pytest.MonkeyPatch, cls, **changes) -> None:
    """``cls.for_profile`` returns its usual profile with ``changes`` (as in test_aecsad_method.py)."""
    original = cls.for_profile.__func__

    def small(klass, profile, *args, **overrides):
        return dataclasses.replace(original(klass, profile, *args, **overrides), **changes)

    monkeypatch.setattr(cls, "for_profile", classmethod(small))


@pytest.fixture(scope="session")
def aecsad_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fitted and evaluated ``aecsad`` model on 128 px ``pin_tray`` images, profiles shrunk to
    seconds (96 px segmenter, 64 px LGST, a few steps): a prediction with every branch map, at a
    smaller side than the images (the page must draw maps at the image's resolution)."""
    root = tmp_path_factory.mktemp("aecsad_pages")
    generate(SynthSettings(out=root / "data", categories=(CATEGORY,), seed=3, n_train=6, n_validation=3,
                           n_test_good=2, n_logical=2, n_structural=2, size=128))
    ws = Workspace.create(root / "ws")
    ws.add_category(CATEGORY, root / "data" / CATEGORY, "loco")
    with pytest.MonkeyPatch.context() as mp, _one_torch_thread():
        _shrink(mp, SegmentationSettings, image_size=96, epochs=3, batch_size=4, aspp_channels=16,
                decoder_channels=16, low_channels=8)
        _shrink(mp, LgstSettings, image_size=64, grid=16, channels=16, local_width=(8, 16), global_width=8,
                steps=6, batch_size=2, checkpoint_every=3)
        run_pseudo_labels(ws, CATEGORY, FAST_PL, detector="none", segmenter="classic", device="cpu")
        fit_method(ws, CATEGORY, "aecsad", device="cpu")
        evaluate_method(ws, CATEGORY, "aecsad", device="cpu")
    return ws.path


@pytest.fixture
def slow_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test-only ``gated`` method of tests/unit/test_background_jobs.py registered here (the
    page's method picker lists it) and in every job worker started (``$PIPELINE_JOB_IMPORTS``).
    Its fit counts steps until the returned gate file exists; create it to let the job finish."""
    monkeypatch.syspath_prepend(str(UNIT_TESTS))
    jobs_test = importlib.import_module("test_background_jobs")
    gate = tmp_path / "gate"
    monkeypatch.setenv(jobs_test.GATE_ENV, str(gate))
    monkeypatch.setenv(IMPORTS_ENV, jobs_test.PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(UNIT_TESTS), os.environ.get("PYTHONPATH")))))
    monkeypatch.setitem(METHODS, "gated", jobs_test.GATED)
    return gate


@pytest.fixture
def stop_workers() -> Iterator[Callable[[Path], Path]]:
    """``stop_workers(ws_path)``: kill, after the test, any job worker of that workspace still alive."""
    paths: list[Path] = []
    yield lambda path: paths.append(Path(path)) or Path(path)
    for path in paths:
        for job in Workspace.open(path).jobs(-1):
            if job.pid and pid_alive(job.pid):
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
