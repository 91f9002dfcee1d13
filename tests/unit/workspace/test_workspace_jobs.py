"""Job records: one running job at a time, stale jobs of dead processes marked failed."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.workspace import Workspace, WorkspaceError, pid_alive
from pipeline.workspace.jobs import STALE_MESSAGE


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer exists
    return proc.pid


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_pid_alive(sleeper) -> None:
    assert pid_alive(sleeper.pid)
    assert not pid_alive(_dead_pid())
    assert not pid_alive(0) and not pid_alive(-5)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombie check reads /proc")
def test_unreaped_child_counts_as_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while pid_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pid_alive(proc.pid)
    finally:
        proc.wait()


def test_second_job_refused_while_first_process_lives(tmp_path: Path, sleeper) -> None:
    ws = Workspace.create(tmp_path / "ws")
    first = ws.start_job("fit", "pushpins", "instant", {"profile": "quick"}, pid=sleeper.pid)
    expected = f"job {first} (fit instant on pushpins) is still running (pid {sleeper.pid})"
    with pytest.raises(WorkspaceError, match=re.escape(expected)):
        ws.start_job("evaluate", "boxes", "instant", {})
    assert [j.id for j in ws.jobs()] == [first] and ws.job(first).status == "running"
    ws.finish_job(first, "cancelled", "stopped by the user")
    second = ws.start_job("evaluate", "boxes", "instant", {})
    assert second > first and [j.id for j in ws.jobs()] == [second, first]


def test_stale_job_of_dead_process_is_failed_and_new_one_starts(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    stale = ws.start_job("fit", "pushpins", "instant", {}, pid=_dead_pid())
    fresh = ws.start_job("fit", "pushpins", "instant", {"again": True})
    record = ws.job(stale)
    assert (record.status, record.message) == ("failed", STALE_MESSAGE)
    assert ws.job(fresh).status == "running" and ws.job(fresh).params == {"again": True}


def test_job_without_pid_blocks_until_finished(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    job = ws.start_job("fit", "c", "m", {})
    with pytest.raises(WorkspaceError, match="no process recorded"):
        ws.start_job("fit", "c", "m", {})
    ws.update_job(job, pid=_dead_pid())  # the launcher records the child's pid once it has one
    assert ws.mark_stale_jobs() == [job]
    assert ws.job(job).status == "failed"


def test_update_and_finish(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    job = ws.start_job("fit", "c", "m", {"epochs": 2})
    started = ws.job(job)
    assert (started.status, started.stage, started.step, started.total, started.metrics) == ("running", "", 0, 0, {})
    ws.update_job(job, stage="train", step=np.int64(1), total=2, metrics={"loss": [np.float32(0.9)]})
    ws.update_job(job, step=2, metrics={"eta_s": 0})
    record = ws.job(job)
    assert (record.stage, record.step, record.total) == ("train", 2, 2)
    assert record.metrics == {"loss": [pytest.approx(0.9)], "eta_s": 0}
    assert record.updated_at >= started.updated_at and record.started_at == started.started_at
    with pytest.raises(WorkspaceError, match="final job status"):
        ws.finish_job(job, "running")
    ws.finish_job(job, "failed", "out of memory")
    assert (ws.job(job).status, ws.job(job).message) == ("failed", "out of memory")
    with pytest.raises(WorkspaceError, match="no job 999"):
        ws.job(999)
    with pytest.raises(WorkspaceError, match="no job 999"):
        ws.update_job(999, step=1)


def test_jobs_limit_newest_first(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ids = []
    for _ in range(5):
        ids.append(ws.start_job("fit", "c", "m", {}))
        ws.finish_job(ids[-1], "done")
    assert [j.id for j in ws.jobs(limit=3)] == ids[::-1][:3]


def test_remove_category_refused_while_its_job_runs(tmp_path: Path, sleeper) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category("c", tmp_path, "loco")
    ws.start_job("fit", "c", "m", {}, pid=sleeper.pid)
    with pytest.raises(WorkspaceError, match="running job"):
        ws.remove_category("c")
    assert [c.name for c in ws.categories()] == ["c"]
