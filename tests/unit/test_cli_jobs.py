"""``python -m pipeline jobs ...``: start (prints the id), refused twice, show, list, cancel, resume,
and one-line errors with exit code 2. Uses the test-only ``gated`` method of test_background_jobs."""

from __future__ import annotations

import importlib
import os
import signal
import time
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.jobs import IMPORTS_ENV
from pipeline.methods import METHODS
from pipeline.workspace import Workspace, pid_alive

HERE = Path(__file__).resolve().parent


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """test_background_jobs as a module, its methods registered here and in the workers."""
    monkeypatch.syspath_prepend(str(HERE))
    module = importlib.import_module("test_background_jobs")
    monkeypatch.setenv(module.GATE_ENV, str(tmp_path / "gate"))
    monkeypatch.setenv(IMPORTS_ENV, module.PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(HERE), os.environ.get("PYTHONPATH")))))
    monkeypatch.setitem(METHODS, "gated", module.GATED)
    return module


def _cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_jobs_commands_start_show_cancel_resume(tiny_synth: Path, tmp_path: Path, helpers, capsys) -> None:
    ws_path = tmp_path / "ws"
    assert _cli(capsys, "import", "--workspace", ws_path, "--data", tiny_synth, "--categories", "bottle")[0] == 0
    ws = Workspace.open(ws_path)
    try:
        code, out, err = _cli(capsys, "jobs", "start", "--workspace", ws_path, "--category", "bottle",
                              "--method", "gated", "--device", "cpu", "--set", "lgst.steps=7")
        assert (code, out) == (0, "1\n") and "jobs show" in err
        code, out, err = _cli(capsys, "jobs", "start", "--workspace", ws_path, "--category", "bottle", "--method", "gated")
        assert code == 2 and err.startswith("error: job 1 (fit gated on bottle) is still running") and err.count("\n") == 1

        _wait(lambda: ws.job(1).stage == "gated wait")
        code, out, _ = _cli(capsys, "jobs", "show", "--workspace", ws_path, "--job", 1)
        assert code == 0 and "job 1: fit gated on bottle: running" in out and "stage: gated wait" in out
        assert "ETA of this stage: unknown" in out and "log (last 20 lines):" in out
        code, out, _ = _cli(capsys, "jobs", "list", "--workspace", ws_path)
        assert code == 0 and out.split()[:2] == ["1", "running"]
        code, out, _ = _cli(capsys, "jobs", "cancel", "--workspace", ws_path, "--job", 1)
        assert (code, out) == (0, "job 1: cancelled (cancelled by the user)\n")
        assert _cli(capsys, "job-worker", "--workspace", ws_path, "--job", 1)[:2] == (0, "job 1 is cancelled; nothing to do\n")

        (tmp_path / "gate").touch()
        code, out, err = _cli(capsys, "jobs", "resume", "--workspace", ws_path, "--job", 1)
        assert (code, out) == (0, "2\n") and "job 1 resumed as job 2" in err
        _wait(lambda: ws.job(2).status != "running", 90)
        code, out, _ = _cli(capsys, "jobs", "show", "--workspace", ws_path, "--job", 2)
        assert "job 2: fit gated on bottle: done" in out and "resumed_from 1" in out and "last metrics (1 of 1)" in out
        assert ws.model_record("bottle", "gated").settings["settings_changes"] == {"lgst": {"steps": 7}}  # kept on resume
        code, _, err = _cli(capsys, "jobs", "resume", "--workspace", ws_path, "--job", 2)
        assert code == 2 and "only a failed or cancelled job can be resumed" in err
    finally:
        for job in ws.jobs(-1):
            if job.pid and pid_alive(job.pid):
                os.kill(job.pid, signal.SIGKILL)


def test_jobs_commands_fail_in_one_line(tiny_synth: Path, tmp_path: Path, capsys) -> None:
    ws_path = tmp_path / "ws"
    code, _, err = _cli(capsys, "jobs", "show", "--workspace", ws_path, "--job", 1)
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "jobs", "start", "--workspace", ws_path, "--data", tiny_synth, "--category", "bottle",
                        "--method", "nope")
    assert code == 2 and "unknown method 'nope'" in err  # --data created the workspace and registered it
    code, _, err = _cli(capsys, "jobs", "start", "--workspace", ws_path, "--category", "bottle", "--set", "lgst.stepz=1")
    assert code == 2 and "unknown setting 'lgst.stepz'" in err and err.count("\n") == 1
    assert [c.name for c in Workspace.open(ws_path).categories()] == ["bottle"]
    for args in (("show", "--job", 9), ("cancel", "--job", 9), ("resume", "--job", 9)):
        code, _, err = _cli(capsys, "jobs", args[0], "--workspace", ws_path, *args[1:])
        assert code == 2 and err == "error: no job 9 in this workspace\n"
    code, _, err = _cli(capsys, "jobs", "start", "--workspace", ws_path, "--category", "other")
    assert code == 2 and "other" in err
    assert _cli(capsys, "jobs", "list", "--workspace", ws_path)[1] == "no jobs in this workspace\n"
