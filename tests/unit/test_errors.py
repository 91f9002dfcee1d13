"""The CLI's error model: user errors are one ``error:`` line (exit 2), anything else a ``bug:``
line naming a saved traceback (exit 1), Ctrl-C exits 130."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.cli import doctor, jobs
from pipeline.__main__ import main
from pipeline.bug_reports import LOG_DIR_ENV
from pipeline.data.images import ImageReadError
from pipeline.data.samples import DataError
from pipeline.deploy.bundle import BundleError
from pipeline.device import DeviceError
from pipeline.errors import MissingFileError, NotReadyError, SettingsError, UserError
from pipeline.methods import get_method
from pipeline.methods.segmentation.data import NoPseudoLabelsError
from pipeline.methods.training_settings import parse_training_settings
from pipeline.models.weights import IncompatibleWeightsError, MissingWeightsError
from pipeline.workspace import Workspace, WorkspaceError

BUG_LINE = re.compile(r"^bug: (.+) — this is a bug in the workbench, not in your data; "
                      r"full traceback written to (.+) \(please send it\)$")


@pytest.fixture(autouse=True)
def user_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Bug reports outside a workspace go here, never to the real ~/.cache."""
    folder = tmp_path / "user-logs"
    monkeypatch.setenv(LOG_DIR_ENV, str(folder))
    return folder


def _raising(error: BaseException):
    def handler(*args, **kwargs):
        raise error
    return handler


def _bug_file(err: str) -> Path:
    """The traceback file named by the one ``bug:`` line of ``err``."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    match = BUG_LINE.match(lines[0])
    assert match, lines[0]
    return Path(match.group(2))


def test_a_user_error_is_one_error_line_and_exit_2(monkeypatch, capsys, user_logs) -> None:
    monkeypatch.setattr(doctor, "doctor", _raising(SettingsError("bad value\n  try another")))
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err == "error: bad value try another\n"
    assert not user_logs.exists()  # nothing to report


def test_a_real_bad_option_is_still_a_user_error(tmp_path, capsys) -> None:
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: predict needs --workspace")


@pytest.mark.parametrize("error", [ValueError("cannot reshape array of size 0 into shape (0,newaxis)"),
                                   RuntimeError("boom"), KeyError("missing")])
def test_a_bug_is_one_line_naming_a_saved_traceback_and_exit_1(monkeypatch, capsys, user_logs, error) -> None:
    monkeypatch.setattr(doctor, "doctor", _raising(error))
    assert main(["doctor"]) == 1
    err = capsys.readouterr().err
    path = _bug_file(err)
    assert err.startswith(f"bug: {type(error).__name__}: ") and "Traceback" not in err
    assert path.parent == user_logs and re.fullmatch(r"bug-\d{8}-\d{6}-\d+\.txt", path.name)
    report = path.read_text()
    assert "command: python -m pipeline doctor" in report and "torch: " in report and "python: " in report
    assert "Traceback (most recent call last)" in report and f"{type(error).__name__}: " in report
    assert "handler" in report  # the frame that raised


def test_a_bug_in_a_workspace_command_lands_in_its_logs_folder(monkeypatch, capsys, tmp_path, user_logs) -> None:
    ws = Workspace.create(tmp_path / "ws")
    monkeypatch.setattr(jobs, "list_jobs", _raising(ValueError("cannot reshape")))
    assert main(["jobs", "list", "--workspace", str(ws.path)]) == 1
    path = _bug_file(capsys.readouterr().err)
    assert path.parent == ws.path / "logs" and "cannot reshape" in path.read_text()
    assert not user_logs.exists()


def test_a_workspace_that_does_not_exist_gets_no_logs_folder(monkeypatch, capsys, tmp_path, user_logs) -> None:
    monkeypatch.setattr(jobs, "list_jobs", _raising(RuntimeError("boom")))
    assert main(["jobs", "list", "--workspace", str(tmp_path / "none")]) == 1
    assert _bug_file(capsys.readouterr().err).parent == user_logs
    assert not (tmp_path / "none").exists()


def test_a_traceback_that_cannot_be_saved_is_printed(monkeypatch, capsys, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(LOG_DIR_ENV, str(blocker / "logs"))  # a folder inside a file: never writable
    monkeypatch.setattr(doctor, "doctor", _raising(ValueError("cannot reshape")))
    assert main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bug: ValueError: cannot reshape — this is a bug in the workbench")
    assert "could not be saved" in err and "Traceback (most recent call last)" in err


def test_ctrl_c_exits_130(monkeypatch, capsys, user_logs) -> None:
    monkeypatch.setattr(doctor, "doctor", _raising(KeyboardInterrupt()))
    assert main(["doctor"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"
    assert not user_logs.exists()


@pytest.mark.parametrize(("error", "legacy"), [
    (DataError, ValueError), (ImageReadError, ValueError), (WorkspaceError, RuntimeError),
    (MissingWeightsError, FileNotFoundError), (IncompatibleWeightsError, ValueError), (DeviceError, RuntimeError),
    (BundleError, ValueError), (NoPseudoLabelsError, ValueError), (SettingsError, ValueError),
    (NotReadyError, ValueError), (MissingFileError, FileNotFoundError),
])
def test_project_errors_are_user_errors_and_keep_their_old_base(error, legacy) -> None:
    # The pages (and older callers) still catch the built-in base.
    assert issubclass(error, UserError) and issubclass(error, legacy)


def test_bad_names_and_settings_are_user_errors() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'lgst.stepz'"):
        parse_training_settings(["lgst.stepz=1"])
    with pytest.raises(SettingsError, match="takes int"):
        parse_training_settings(["lgst.steps=many"])
    with pytest.raises(SettingsError, match="unknown method 'nope'"):
        get_method("nope")


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--device", "cpu", "--repeats", "0"], "--repeats must be at least 1"),
    (["calibrate", "--workspace", "{tmp}/ws", "--category", "c", "--min-marked", "0"], "--min-marked must be at least 1"),
])
def test_counts_a_run_cannot_honour_are_user_errors(argv, message, tmp_path, capsys, user_logs) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not user_logs.exists()


def test_a_bug_in_a_job_worker_fails_the_job_and_logs_its_traceback(monkeypatch, capsys, tmp_path) -> None:
    from pipeline.methods import runner

    ws = Workspace.create(tmp_path / "ws")
    job_id = ws.start_job("fit", "bottle", "instant", {})
    monkeypatch.setattr(runner, "fit_method", _raising(ValueError("cannot reshape array of size 0")))
    assert main(["job-worker", "--workspace", str(ws.path), "--job", str(job_id)]) == 1
    err = capsys.readouterr().err  # the worker's stderr is its log file
    assert "Traceback (most recent call last)" in err and "ValueError: cannot reshape array of size 0" in err
    job = ws.job(job_id)
    assert job.status == "failed" and job.message == "ValueError: cannot reshape array of size 0"
