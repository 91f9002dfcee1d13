"""LGST training loop and the ``train-lgst`` command: learning, kill-and-resume, starting over,
checkpoint round trip, and that ``fit`` would find the students the command trained."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.__main__ import main
from pipeline.data.discover import load_category
from pipeline.data.images import load_rgb
from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods import get_method
from pipeline.methods.lgst_training import StepLog, format_step, lgst_inputs
from pipeline.methods.aecsad import method as aecsad
from pipeline.methods.lgst import train as lgst_train
from pipeline.methods.lgst.checkpoint import build_lgst, load_lgst_checkpoint
from pipeline.methods.lgst.data import LgstData
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.train import CHECKPOINT, budget_steps, train_lgst
from pipeline.models.preprocess import to_tensor_batch
from pipeline.workspace import Workspace
from tests.unit.methods.test_cli_train_seg import CATEGORY, workspace  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIDE = 64
CPU = torch.device("cpu")
TINY = LgstSettings(image_size=SIDE, grid=16, channels=16, local_width=(8, 16), global_width=8, batch_size=2,
                    steps=40, lr=3e-3, hard_fraction=0.1, checkpoint_every=10)
"""About 0.1 s a step on one core; hard mining over the top 10% (of 8192 errors a step, 0.1% is 8)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> LgstData:
    """6 tiny pin trays, their true component maps as the label maps LSA moves parts of."""
    out = tmp_path_factory.mktemp("lgst_train")
    generate(SynthSettings(out=out, categories=("pin_tray",), n_train=6, n_validation=1, n_test_good=1,
                           n_logical=1, n_structural=1, size=SIDE))
    samples = load_category(out / "pin_tray").select("train", "good")
    images = tuple(np.asarray(load_rgb(s.path)) for s in samples)
    maps = tuple(np.asarray(load_rgb(s.component_path))[..., 0] for s in samples)
    return LgstData(images, maps, tuple(s.key for s in samples))


def _train(data: LgstData, folder: Path, settings: LgstSettings = TINY, **kwargs):
    return train_lgst(data, settings, folder, CPU, **kwargs)


def _assert_same_students(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        torch.testing.assert_close(value, b[name], rtol=1e-5, atol=1e-5, msg=name)


class Killed(Exception):
    pass


def test_training_lowers_the_loss_and_records_every_step(data, tmp_path):
    reported: list[dict] = []
    result = _train(data, tmp_path, dataclasses.replace(TINY, steps=50), report=reported.append)
    history = result.history
    assert [r["step"] for r in history] == list(range(1, 51))  # 50 steps: a record per step
    assert list(history) == reported and all(r["stage"] == "train lgst" for r in history)
    losses = [r["loss"] for r in history]
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert history[-1]["loss_local"] < history[0]["loss_local"]
    assert history[0]["lr"] == TINY.lr and history[-1]["lr"] == pytest.approx(0.1 * TINY.lr)  # drop at 95%
    assert result.resumed_from == 0 and not result.net.training
    assert load_lgst_checkpoint(tmp_path / CHECKPOINT).steps_done == 50


def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_as_if_never_stopped(data, tmp_path):
    straight = _train(data, tmp_path / "straight")

    def kill_after_step_21(stage: str, done: int, total: int) -> None:
        if done == 21:  # step 20's checkpoint is on disk, step 21 is lost
            raise Killed

    with pytest.raises(Killed):
        _train(data, tmp_path / "killed", progress=kill_after_step_21)
    at_kill = load_lgst_checkpoint(tmp_path / "killed" / CHECKPOINT)
    assert at_kill.steps_done == 20 and [r["step"] for r in at_kill.history] == list(range(1, 21))

    ran: list[int] = []
    resumed = _train(data, tmp_path / "killed", report=lambda record: ran.append(record["step"]))
    assert resumed.resumed_from == 20 and ran == list(range(21, 41))  # only the missing steps ran
    _assert_same_students(resumed.net.student_state_dict(), straight.net.student_state_dict())
    for ours, theirs in zip(resumed.history, straight.history):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4, abs=1e-6)


def test_budget_steps_fit_the_budget_at_the_measured_pace():
    budgeted = dataclasses.replace(TINY, steps=400, time_budget_s=100.0)
    assert budget_steps(budgeted, done=10, seconds=20.0) == 50  # 2 s a step: 50 steps in 100 s
    assert budget_steps(budgeted, done=10, seconds=13.0) == 70  # 76.9 steps fit, rounded down to tens
    assert budget_steps(budgeted, done=10, seconds=1.0) == 400  # never more than settings.steps
    assert budget_steps(budgeted, done=60, seconds=150.0) == 60  # over budget: stop now, not earlier
    assert budget_steps(TINY, done=10, seconds=1e6) == TINY.steps  # no budget: exactly the steps


class FakeClock:
    """``perf_counter`` stand-in: 1 s passes between two reads (the loop reads it once a step)."""

    def __init__(self) -> None:
        self.now = -1.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


BUDGETED = dataclasses.replace(TINY, steps=40, time_budget_s=30.0)
"""At the fake clock's 1 s a step, 30 of the 40 steps fit."""


def test_a_time_budget_plans_the_steps_and_drops_the_rate_at_95_percent_of_them(data, tmp_path, monkeypatch):
    monkeypatch.setattr(lgst_train, "_clock", FakeClock())
    seen: list[tuple[int, int]] = []
    result = _train(data, tmp_path, BUDGETED, progress=lambda stage, done, total: seen.append((done, total)))
    assert result.steps == 30 and [r["step"] for r in result.history] == list(range(1, 31))
    assert seen[0] == (1, 40) and seen[-1] == (30, 30)  # the job's total follows the plan
    lrs = [r["lr"] for r in result.history]
    assert lrs[27] == TINY.lr and lrs[28] == pytest.approx(0.1 * TINY.lr)  # step 29 = int(0.95 * 30) + 1
    saved = load_lgst_checkpoint(tmp_path / CHECKPOINT)
    assert (saved.steps_done, saved.planned_steps, saved.finished) == (30, 30, True)
    assert saved.train_seconds == pytest.approx(30.0) and result.seconds == pytest.approx(30.0)
    ran: list[int] = []
    again = _train(data, tmp_path, BUDGETED, report=lambda record: ran.append(record["step"]))
    assert again.resumed_from == 30 and again.steps == 30 and ran == []  # finished: fit reuses it


def test_a_killed_budgeted_run_resumes_with_its_plan_and_the_seconds_it_spent(data, tmp_path, monkeypatch):
    monkeypatch.setattr(lgst_train, "_clock", FakeClock())
    straight = _train(data, tmp_path / "straight", BUDGETED)

    def kill_after_step_21(stage: str, done: int, total: int) -> None:
        if done == 21:
            raise Killed

    monkeypatch.setattr(lgst_train, "_clock", FakeClock())
    with pytest.raises(Killed):
        _train(data, tmp_path / "killed", BUDGETED, progress=kill_after_step_21)
    at_kill = load_lgst_checkpoint(tmp_path / "killed" / CHECKPOINT)
    assert (at_kill.steps_done, at_kill.planned_steps, at_kill.train_seconds) == (20, 30, 20.0)
    monkeypatch.setattr(lgst_train, "_clock", FakeClock())
    resumed = _train(data, tmp_path / "killed", BUDGETED)
    assert resumed.resumed_from == 20 and resumed.steps == 30 and resumed.seconds == pytest.approx(30.0)
    _assert_same_students(resumed.net.student_state_dict(), straight.net.student_state_dict())


def test_other_settings_other_data_or_resume_false_start_over(data, tmp_path):
    short = dataclasses.replace(TINY, steps=3)
    _train(data, tmp_path, short)
    ran: list[int] = []
    again = _train(data, tmp_path, short, report=lambda record: ran.append(record["step"]))
    assert again.resumed_from == 3 and ran == []  # finished: nothing left to do
    assert _train(data, tmp_path, dataclasses.replace(short, lr=1e-3)).resumed_from == 0
    fewer = LgstData(data.images[:5], data.label_maps[:5], data.keys[:5])
    assert _train(fewer, tmp_path, short).resumed_from == 0
    _train(data, tmp_path, short)
    assert _train(data, tmp_path, short, resume=False).resumed_from == 0


def test_the_checkpoint_round_trips_into_the_same_maps(data, tmp_path):
    result = _train(data, tmp_path, dataclasses.replace(TINY, steps=5, checkpoint_every=2))
    saved = load_lgst_checkpoint(tmp_path / CHECKPOINT)
    assert saved.settings == result.net.settings and saved.steps_done == 5
    assert list(saved.history) == list(result.history) and saved.data_fingerprint == data.fingerprint()
    assert saved.optimizer  # Adam's moments travel, so a resume continues the same optimisation
    rebuilt = build_lgst(saved, CPU)
    x = to_tensor_batch(list(data.images[:3]), SIDE)
    expected = result.net.maps(x)
    for name, value in rebuilt.maps(x).items():
        torch.testing.assert_close(value, expected[name])


def test_step_log_prints_about_every_tenth_with_the_mean_since_the_last_line():
    lines: list[str] = []
    log = StepLog(steps=100, record_every=1, write=lines.append)
    for step in range(1, 101):
        log({"stage": "train lgst", "step": step, "loss": float(step), "loss_local": 1.0, "loss_global": 2.0,
             "loss_fusion": 3.0, "lr": 1e-3, "seconds": step / 10})
    assert len(lines) == 10 and lines[0].startswith("step 10/100  loss 5.500 (local 1.000 global 2.000 fusion 3.000)")
    assert lines[-1] == format_step({"step": 100, "loss": 95.5, "loss_local": 1.0, "loss_global": 2.0,
                                     "loss_fusion": 3.0, "lr": 1e-3, "seconds": 10.0}, 100)
    resumed: list[str] = []
    log = StepLog(steps=1200, record_every=6, write=resumed.append)  # the quick profile, resumed at 600
    for step in range(606, 1201, 6):
        log({"step": step, "loss": 1.0, "lr": 1e-3, "seconds": 1.0})
    assert [line.split()[1] for line in resumed] == [f"{s}/1200" for s in range(720, 1201, 120)]


def test_train_lgst_uses_the_data_and_settings_fit_would_so_fit_reuses_the_students(
        workspace, monkeypatch):  # noqa: F811 (fixture)
    """Run ``fit``'s LGST part up to its ``train_lgst`` call and compare with what the command trains."""
    seen: dict = {}

    def capture(data, settings, out_dir, device, **kwargs):
        seen.update(fingerprint=data.fingerprint(), settings=settings, out_dir=out_dir)
        raise Killed

    monkeypatch.setattr(aecsad.histogram, "fit", lambda ctx: {})  # segmenter + histograms: not what is checked
    monkeypatch.setattr(aecsad.histogram, "load", lambda folder, device: None)
    monkeypatch.setattr(aecsad, "train_lgst", capture)
    ws = Workspace.open(workspace)
    for method in ("aecsad", "csad"):
        spec = get_method(method)
        with pytest.raises(Killed):
            spec.fit(aecsad.FitContext(
                data=load_category(Path(ws.category(CATEGORY).data_root)), out_dir=ws.method_dir(CATEGORY, method),
                profile="quick", device=CPU, seed=3, workspace=ws, category=CATEGORY))
        ours = lgst_inputs(ws, CATEGORY, method, "quick", seed=3, backbone="auto")
        assert ours.settings == seen["settings"] and ours.out_dir == seen["out_dir"]
        assert ours.data.fingerprint() == seen["fingerprint"]
        assert any(m is not None for m in ours.data.label_maps)  # the reliable images carry their maps
    assert lgst_inputs(ws, CATEGORY, "aecsad", "quick", 3, "auto", steps=7).settings == dataclasses.replace(
        seen["settings"], attention=True, steps=7)


def test_train_lgst_command_prints_steps_and_resumes(workspace, capsys):  # noqa: F811 (fixture)
    args = ["train-lgst", "--workspace", str(workspace), "--category", CATEGORY, "--device", "cpu", "--steps", "2"]
    assert main([*args, "--restart"]) == 0
    printed = capsys.readouterr().out
    assert "device: cpu;" in printed and "aecsad students on efficientnet_lite0" in printed
    assert "step 1/2  loss" in printed and "step 2/2  loss" in printed and "lr 1.0e-03" in printed
    assert "up to 2 steps (22 min of training)" in printed and "trained 2 steps in" in printed
    assert "fit --method aecsad will train its own students" in printed  # 2 steps are not the profile's
    checkpoint = Workspace.open(workspace).method_dir(CATEGORY, "aecsad") / CHECKPOINT
    assert load_lgst_checkpoint(checkpoint).steps_done == 2
    assert main(args) == 0  # finished: nothing left to do
    printed = capsys.readouterr().out
    assert "step 1/2" not in printed and "resumed after step 2 of 2" in printed


def test_train_lgst_command_errors_exit_2_with_one_line(workspace, tmp_path, capsys):  # noqa: F811 (fixture)
    assert main(["train-lgst", "--workspace", str(workspace), "--category", "nope"]) == 2
    assert "unknown category 'nope'" in capsys.readouterr().err
    assert main(["train-lgst", "--workspace", str(workspace), "--category", CATEGORY, "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["train-lgst", "--workspace", str(tmp_path / "none"), "--category", CATEGORY]) == 2
    assert "does not exist" in capsys.readouterr().err

    ws = Workspace.create(tmp_path / "ws")
    generate(SynthSettings(out=tmp_path / "data", categories=(CATEGORY,), n_train=2, n_validation=1, n_test_good=1,
                           n_logical=1, n_structural=1, size=48))
    register_category(ws, tmp_path / "data", CATEGORY)
    assert main(["train-lgst", "--workspace", str(ws.path), "--category", CATEGORY, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no pseudo-labels yet" in err and "pseudo-labels" in err
