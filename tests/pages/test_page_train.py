"""Train page: fit jobs in the background (progress, refusal of a second job, cancel, resume,
history), evaluation, and a finished job's model on Inspect.

The jobs are real worker processes. A job that must stay running for a while uses the test-only
``gated`` method (``slow_jobs``), which counts steps until its gate file appears.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from pipeline.jobs import current_job
from pipeline.workspace import Workspace

PAGE = "pages/train.py"
JOB_TIMEOUT_S = 120.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = JOB_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def wait_job_ended(ws: Workspace, job_id: int) -> None:
    wait_for(lambda: current_job(ws, job_id).status != "running", f"job {job_id} to end")


def _subheaders(at) -> list[str]:
    return [h.value for h in at.subheader]


def _history(at):
    return next(df.value for df in at.dataframe if "status" in df.value.columns)


def test_device_line_says_whether_cuda_is_there(app, page_workspaces):
    at = app.open(page_workspaces["data"], PAGE)
    assert at.selectbox("train_device").options[:2] == ["auto", "cpu"]
    line = next(c.value for c in at.caption if c.value.startswith("Runs on "))
    assert ("CUDA GPU: cuda:0 (" in line) if torch.cuda.is_available() else ("No CUDA GPU: not available" in line)
    assert any("No training job yet" in c.value for c in at.caption)
    assert not {"cancel_job", "resume_job"} & {b.key for b in at.button}


def test_instant_job_runs_in_the_background_and_its_model_shows_on_inspect(app, workspace_copy, stop_workers):
    ws_path = stop_workers(workspace_copy("data"))
    ws = Workspace.open(ws_path)
    at = app.open(ws_path, PAGE)
    assert at.selectbox("train_method").value == "instant"
    assert [n.key for n in at.number_input] == ["train_seed"]  # instant has no training length to change
    assert at.button("evaluate_button").disabled  # nothing to evaluate before a build
    at.selectbox("train_device").set_value("cpu")
    at.number_input("train_seed").set_value(3)
    at.button("fit_button").click()
    app.run(at)
    assert not at.error
    assert at.info[0].value.startswith("Started job 1: ") and "closing this tab does not stop it" in at.info[0].value
    [job] = ws.jobs()
    assert (job.method, job.category, job.params["device"], job.params["seed"]) == ("instant", "pin_tray", "cpu", 3)
    assert _subheaders(at)[0].startswith("Job 1: ")

    wait_job_ended(ws, 1)
    app.run(at)
    assert _subheaders(at)[0].endswith("· done")
    [success] = at.success
    assert success.value.startswith("Job 1 built ") and "**pin_tray** from 10 good images" in success.value
    assert "of 4 good validation images" in success.value
    history = _history(at)
    assert list(history["job"]) == [1] and list(history["status"]) == ["done"]
    models = next(df.value for df in at.dataframe if "method" in df.value.columns and "built" in df.value.columns)
    assert list(models["method"]) == ["instant"]
    assert ws.model_record("pin_tray", "instant").settings["seed"] == 3
    assert not at.button("evaluate_button").disabled

    # Inspect shows the job's model: its validation images, scored by the job, worst first.
    at.switch_page("pages/inspect.py")
    app.run(at)
    assert any(c.value.startswith("Model built ") and "seed 3" in c.value for c in at.caption)
    at.radio("inspect_split").set_value("validation")
    app.run(at)
    stored = ws.scores("pin_tray", "instant", split="validation")
    listed = [float(o.rsplit(" · ", 1)[1]) for o in at.selectbox("inspect_pick").options]
    assert listed == sorted(listed, reverse=True) and len(listed) == len(stored) == 4
    assert {m.label for m in at.metric} == {"Score", "Threshold", "Verdict"}


def test_evaluate_button_scores_the_test_images(app, workspace_copy):
    ws_path = workspace_copy("fitted")
    ws = Workspace.open(ws_path)
    at = app.open(ws_path, PAGE)
    assert not at.button("evaluate_button").disabled
    at.button("evaluate_button").click()
    app.run(at)
    assert at.info[0].value == "Evaluated **pin_tray** on 16 test images."
    assert len(ws.scores("pin_tray", "instant", split="test")) == 16
    auroc = ws.model_record("pin_tray", "instant").metrics["auroc"]
    row = next(df.value for df in at.dataframe if "AUROC logical" in df.value.columns).iloc[0]
    assert row["AUROC logical"] == auroc["logical"] and row["AUROC structural"] == auroc["structural"]
    assert any(link.proto.label.startswith("Next: inspect") for link in at.get("page_link"))


def test_second_launch_is_refused_cancel_and_resume(app, workspace_copy, slow_jobs, stop_workers):
    ws_path = stop_workers(workspace_copy("data"))
    ws = Workspace.open(ws_path)
    at = app.open(ws_path, PAGE)
    at.selectbox("train_method").set_value("gated")
    at.selectbox("train_device").set_value("cpu")
    app.run(at)
    assert at.number_input("train_lgst_steps_quick").value == 2300  # gated trains "lgst": the quick profile's steps
    assert at.number_input("train_lgst_budget_quick").value == 22.0  # ... and its time budget in minutes
    at.number_input("train_lgst_steps_quick").set_value(3000)
    at.number_input("train_lgst_budget_quick").set_value(0.0)
    assert at.checkbox("train_fusion_retrieval").value and at.number_input("train_fusion_top_k").value == 3
    at.checkbox("train_fusion_retrieval").uncheck()
    at.number_input("train_fusion_top_k").set_value(0)
    at.button("fit_button").click()
    app.run(at)
    assert ws.job(1).params["settings_changes"] == {"lgst": {"steps": 3000, "time_budget_s": 0.0},
                                                    "fusion": {"retrieval": False, "top_k": 0}}
    wait_for(lambda: ws.job(1).stage == "gated wait", "the gated stage")

    # Reopening the page (a new session, as after closing the tab) shows the running job.
    reopened = app.open(ws_path, PAGE)
    assert _subheaders(reopened)[0] == "Job 1: Gated (tests) on pin_tray · running"
    assert any(m.label == "Stage" and m.value == "gated wait" for m in reopened.metric)
    assert not reopened.button("cancel_job").disabled

    at.button("fit_button").click()  # a second job while one runs
    app.run(at)
    [error] = at.error
    assert error.value.startswith("Not started: job 1 (fit gated on pin_tray) is still running")
    assert len(ws.jobs()) == 1

    at.button("cancel_job").click()
    app.run(at)
    assert ws.job(1).status == "cancelled"
    assert _subheaders(at)[0].endswith("· cancelled")
    assert any(w.value.startswith("Job 1 was cancelled") for w in at.warning)

    at.button("resume_job").click()
    app.run(at)
    assert at.info[0].value == "Resumed job 1 as job 2, from its checkpoints."
    resumed = ws.job(2)
    assert resumed.status == "running" and resumed.params == {**ws.job(1).params, "resumed_from": 1}
    assert _subheaders(at)[0] == "Job 2: Gated (tests) on pin_tray · running"
    history = _history(at)
    assert list(history["job"]) == [2, 1] and list(history["status"]) == ["running", "cancelled"]
    assert list(history["resumes"])[0] == 1
    # (that the resumed worker continues from the checkpoints is tests/unit/test_background_jobs.py's)


def test_inspect_and_evaluate_ask_for_a_build_first(app, page_workspaces):
    for page in ("pages/inspect.py", "pages/evaluate.py"):
        at = app.open(page_workspaces["data"], page)
        assert len(at.info) == 1 and at.info[0].value.startswith("No instant model for **pin_tray** yet.")
        assert not at.get("image") and not at.get("plotly_chart")


def test_segmenting_methods_say_whether_confidence_weighting_is_on(app, workspace_copy):
    from pipeline.pseudolabels.confidence import set_weighting

    ws_path = workspace_copy("data")
    at = app.open(ws_path, PAGE)
    assert not any("confidence weighting" in c.value for c in at.caption)  # instant trains no segmenter
    at.selectbox("train_method").set_value("histogram")
    app.run(at)
    assert any("confidence weighting of the pseudo-labels is **off**" in c.value for c in at.caption)
    set_weighting(Workspace.open(ws_path), "pin_tray", True)
    app.run(at)
    assert any("confidence weighting of the pseudo-labels is **on**" in c.value for c in at.caption)


def test_the_segmenting_note_follows_the_registry(app, workspace_copy, monkeypatch):
    """Which methods get the confidence-weighting note is the spec's ``segments``, not a page list."""
    from dataclasses import replace

    from pipeline.methods import METHODS, segmenting_method_names

    assert segmenting_method_names() == ("histogram", "aecsad", "csad")
    monkeypatch.setitem(METHODS, "instant", replace(METHODS["instant"], segments=True))
    at = app.open(workspace_copy("data"), PAGE)
    assert any("confidence weighting of the pseudo-labels is **off**" in c.value for c in at.caption)
