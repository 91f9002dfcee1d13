"""Background fit jobs (issue 5 item 9, SPEC §7): real worker processes that report progress, are
refused twice, cancel, and resume after a kill -9.

Slow jobs are made slow deterministically by test-only methods registered in the worker through
``$PIPELINE_JOB_IMPORTS``: ``gated`` counts steps (checkpointing each, reporting progress) until
a gate file appears; ``stuck`` does the same without ever calling progress (a hung step).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from pipeline.jobs import (
    CANCEL_KEY,
    IMPORTS_ENV,
    JobCancelled,
    JobTracker,
    cancel_job,
    current_job,
    job_log,
    launch_fit_job,
    list_jobs,
    resume_job,
    running_job,
)
from pipeline.jobs.tracker import clean_record, stage_eta, thin
from pipeline.methods import METHODS
from pipeline.methods.base import FitContext, MethodSpec, Prediction
from pipeline.methods.runner import load_detector
from pipeline.workspace import Workspace, WorkspaceError, pid_alive
from pipeline.workspace.files import atomic_save_npy, atomic_write_json
from pipeline.workspace.jobs import STALE_MESSAGE

GATE_ENV = "JOBS_TEST_GATE"
"""Path of the file whose existence lets ``gated``/``stuck`` fits finish."""
CHECKPOINT = "gated_steps.json"
HERE = Path(__file__).resolve().parent
PLUGIN = "test_background_jobs:register_test_methods"
CATEGORY = "bottle"


# --- test-only methods (also imported by the worker processes) -----------------------------

class MeanImageDetector:
    """Scores an image by its mean absolute difference from the mean good image (16×16 gray)."""

    method = "gated"

    def __init__(self, mean: np.ndarray) -> None:
        self.mean = mean

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        maps = [np.abs(_small_gray(im) - self.mean).astype(np.float32) for im in images]
        return [Prediction(score=float(m.mean()), anomaly_map=m) for m in maps]


def _small_gray(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L").resize((16, 16)), np.float32) / 255.0


def _wait_at_gate(ctx: FitContext, with_progress: bool) -> None:
    """Count steps until the gate file exists, checkpointing the count so a rerun continues it."""
    gate, checkpoint = Path(os.environ[GATE_ENV]), ctx.out_dir / CHECKPOINT
    step = json.loads(checkpoint.read_text())["steps"] if checkpoint.is_file() else 0
    ctx.report({"loss": 1.0 / (step + 1), "resumed_from_step": step, "bad": float("nan")})
    while not gate.exists():
        step += 1
        atomic_write_json(checkpoint, {"steps": step})
        if with_progress:
            ctx.progress("gated wait", step, 0)
        time.sleep(0.05)


def _gated_fit(ctx: FitContext, with_progress: bool = True) -> dict[str, str]:
    from pipeline.data.images import load_rgb

    _wait_at_gate(ctx, with_progress)
    mean = np.mean([_small_gray(load_rgb(s.path)) for s in ctx.data.select("train", "good")], axis=0)
    atomic_save_npy(ctx.out_dir / "mean.npy", mean.astype(np.float32))
    return {"mean": "mean.npy"}


def _load(folder: Path, device) -> MeanImageDetector:
    return MeanImageDetector(np.load(folder / "mean.npy"))


GATED = MethodSpec("gated", "Gated (tests)", "waits for a gate file", _gated_fit, _load, trains=("lgst", "fusion"))
STUCK = MethodSpec("stuck", "Stuck (tests)", "waits without progress", lambda ctx: _gated_fit(ctx, False), _load)


def register_test_methods() -> None:
    """Called by the worker through ``$PIPELINE_JOB_IMPORTS``."""
    METHODS.update(gated=GATED, stuck=STUCK)


# --- fixtures and helpers --------------------------------------------------------------------

@pytest.fixture
def ws(tiny_synth: Path, tmp_path: Path) -> Workspace:
    from pipeline.data.registered import register_category  # here: the workers import this module, keep it light

    workspace = Workspace.create(tmp_path / "ws")
    register_category(workspace, tiny_synth, CATEGORY)
    return workspace


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The gate file (absent), the test methods registered here and in every worker started."""
    path = tmp_path / "gate"
    monkeypatch.setenv(GATE_ENV, str(path))
    monkeypatch.setenv(IMPORTS_ENV, PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(HERE), os.environ.get("PYTHONPATH")))))
    monkeypatch.setitem(METHODS, "gated", GATED)
    monkeypatch.setitem(METHODS, "stuck", STUCK)
    return path


@pytest.fixture
def cleanup(ws: Workspace):
    """Kill whatever worker a failing test leaves behind."""
    yield
    for job in ws.jobs(-1):
        if job.pid and pid_alive(job.pid):
            try:
                os.killpg(job.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def wait_final(ws: Workspace, job_id: int, timeout: float = 90.0):
    wait_for(lambda: current_job(ws, job_id).status != "running", timeout, f"job {job_id} to end")
    job = ws.job(job_id)
    assert job.status != "failed", f"job failed: {job.message}\n{job_log(ws, job_id)}"
    return job


def checkpoint_steps(ws: Workspace, method: str) -> int:
    path = ws.method_dir(CATEGORY, method) / CHECKPOINT
    return json.loads(path.read_text())["steps"] if path.is_file() else 0


# --- the tracker, without processes -----------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_tracker_throttles_writes_and_computes_the_stage_eta(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    job_id = ws.start_job("fit", "c", "m", {})
    clock, lines = FakeClock(), []
    tracker = JobTracker(ws, job_id, interval_s=0.5, clock=clock, log=lines.append)
    tracker.progress("embed", 0, 100)  # a new stage is written at once
    assert (ws.job(job_id).stage, ws.job(job_id).total) == ("embed", 100)
    for step in range(1, 11):  # 10 steps in 0.1 s: not due yet
        clock.now += 0.01
        tracker.progress("embed", step, 100)
    assert ws.job(job_id).step == 0
    clock.now += 0.9  # 20 steps in 1 s since the stage began: the 80 left take 4 s
    tracker.progress("embed", 20, 100)
    job = ws.job(job_id)
    assert job.step == 20 and job.metrics["eta_s"] == pytest.approx(80 / 20)
    tracker.progress("embed", 100, 100)  # the end of a stage is always written
    assert ws.job(job_id).step == 100 and ws.job(job_id).metrics["eta_s"] == 0
    tracker.progress("score", 1, 0)  # no total: no ETA
    assert ws.job(job_id).metrics["eta_s"] is None and lines == ["stage: embed (100 steps)", "stage: score"]


def test_tracker_keeps_a_bounded_clean_loss_history(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    job_id = ws.start_job("fit", "c", "m", {})
    clock = FakeClock()
    tracker = JobTracker(ws, job_id, clock=clock, log=lambda line: None)
    tracker.progress("train lgst", 3, 10)
    clock.now += 1  # reports are throttled like progress
    tracker.report({"loss": np.float32(0.5), "loss_local": float("inf"), "epoch": 2, "note": "x", "arr": [1]})
    record = ws.job(job_id).metrics["last"]
    assert record == {"stage": "train lgst", "step": 3, "loss": 0.5, "loss_local": None, "epoch": 2, "note": "x"}
    for i in range(1200):
        tracker.report({"stage": "s", "step": i, "loss": 1.0})
    tracker.flush()
    losses = ws.job(job_id).metrics["losses"]
    assert len(losses) <= 500 and losses[-1]["step"] == 1199 and losses[0]["step"] == 3  # spans the whole run
    assert clean_record({"stage": "given", "step": 7}, "other", 1) == {"stage": "given", "step": 7}
    assert stage_eta(5, 10, 5, 1.0) is None and stage_eta(6, 10, 0, 3.0) == pytest.approx(2.0)
    assert thin(list(range(10)), 4) == [0, 2, 4, 6, 8, 9]


def test_tracker_raises_job_cancelled_once_a_cancel_is_requested(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    job_id = ws.start_job("fit", "c", "m", {})
    clock = FakeClock()
    tracker = JobTracker(ws, job_id, clock=clock, log=lambda line: None)
    tracker.progress("a", 1, 10)
    ws.update_job(job_id, metrics={CANCEL_KEY: "now"})
    tracker.progress("a", 2, 10)  # not due: no read, no raise
    clock.now += 1
    with pytest.raises(JobCancelled):
        tracker.progress("a", 3, 10)


# --- real processes ----------------------------------------------------------------------------

def test_instant_fit_job_reports_progress_and_leaves_a_usable_model(ws: Workspace, cleanup) -> None:
    job_id = launch_fit_job(ws, CATEGORY, "instant", device="cpu")
    running = running_job(ws)
    assert running is not None and running.id == job_id and running.pid and pid_alive(running.pid)
    with pytest.raises(WorkspaceError, match=rf"job {job_id} \(fit instant on {CATEGORY}\) is still running"):
        launch_fit_job(ws, CATEGORY, "instant", device="cpu")
    job = wait_final(ws, job_id)
    assert job.status == "done" and job.message.startswith("fitted instant on bottle")
    assert job.stage == "score validation images" and job.step == job.total == 4
    assert job.metrics["eta_s"] == 0 and job.metrics["elapsed_s"] > 0
    assert job.metrics["summary"]["n_train"] == 10 and job.params["device"] == "cpu"
    assert running_job(ws) is None
    wait_for(lambda: not pid_alive(job.pid), 20, "the worker to exit")
    log = job_log(ws, job_id)
    assert "stage: embed train images" in log and "fitted instant" in log
    detector = load_detector(ws, CATEGORY, "instant", "cpu")
    rgb = np.zeros((64, 64, 3), np.uint8)
    assert np.isfinite(detector.predict([rgb])[0].score)


def test_launch_refuses_bad_input_before_starting_anything(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="category"):
        launch_fit_job(ws, "nope", "instant")
    with pytest.raises(ValueError, match="unknown method"):
        launch_fit_job(ws, CATEGORY, "nope")
    with pytest.raises(ValueError, match="profile"):
        launch_fit_job(ws, CATEGORY, "instant", profile="slow")
    with pytest.raises(ValueError, match="does not train lgst"):
        launch_fit_job(ws, CATEGORY, "instant", settings_changes={"lgst": {"steps": 3}})
    assert ws.jobs() == []
    with pytest.raises(WorkspaceError, match="no job 7"):
        cancel_job(ws, 7)


def test_cancel_stops_the_worker_at_its_next_progress_call(ws: Workspace, gate: Path, cleanup) -> None:
    job_id = launch_fit_job(ws, CATEGORY, "gated", device="cpu")
    wait_for(lambda: ws.job(job_id).stage == "gated wait", what="the gated stage")
    job = cancel_job(ws, job_id)
    assert job.status == "cancelled" and job.message == "cancelled by the user"  # the worker ended it itself
    assert not pid_alive(job.pid) and ws.job(job_id).metrics[CANCEL_KEY]
    assert checkpoint_steps(ws, "gated") > 0 and ws.model_record(CATEGORY, "gated") is None
    assert "cancelled by the user" in job_log(ws, job_id)
    with pytest.raises(WorkspaceError, match="not running"):
        cancel_job(ws, job_id)


def test_cancel_terminates_a_worker_that_never_reports(ws: Workspace, gate: Path, cleanup) -> None:
    job_id = launch_fit_job(ws, CATEGORY, "stuck", device="cpu")
    wait_for(lambda: checkpoint_steps(ws, "stuck") > 0, what="the stuck fit to start")
    job = cancel_job(ws, job_id, grace_s=1.0)
    assert job.status == "cancelled" and "worker was stopped" in job.message
    assert not pid_alive(job.pid)


def test_killed_worker_is_marked_stale_and_resume_continues_from_its_checkpoint(
    ws: Workspace, gate: Path, cleanup,
) -> None:
    job_id = launch_fit_job(ws, CATEGORY, "gated", device="cpu", seed=3)
    wait_for(lambda: checkpoint_steps(ws, "gated") >= 3, what="some checkpointed steps")
    os.kill(ws.job(job_id).pid, signal.SIGKILL)
    wait_for(lambda: current_job(ws, job_id).status != "running", 10, "the stale mark")
    crashed = ws.job(job_id)
    assert crashed.status == "failed" and crashed.message == STALE_MESSAGE
    done_steps = checkpoint_steps(ws, "gated")
    assert running_job(ws) is None  # the workspace is free again
    gate.touch()
    new_id = resume_job(ws, job_id)
    job = wait_final(ws, new_id)
    assert job.status == "done" and job.params == {**crashed.params, "resumed_from": job_id}
    assert job.params["seed"] == 3
    first = job.metrics["losses"][0]
    assert first["resumed_from_step"] >= done_steps and first["bad"] is None  # continued, not restarted
    assert [j.id for j in list_jobs(ws)] == [new_id, job_id]
    assert np.isfinite(load_detector(ws, CATEGORY, "gated").predict([np.zeros((8, 8, 3), np.uint8)])[0].score)
    with pytest.raises(WorkspaceError, match="only a failed or cancelled job can be resumed"):
        resume_job(ws, new_id)
