"""Segmentation training loop: learning, kill-and-resume, checkpoint round trip, schedule, mean IoU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.discover import load_category
from pipeline.data.images import load_rgb
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.segmentation.checkpoint import build_network, load_checkpoint
from pipeline.methods.segmentation.data import SegmentationData, resize_image, resize_label_map
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import predict_labels
from pipeline.methods.segmentation.train import CHECKPOINT, HISTORY, cosine_lr, mean_iou, train_segmentation

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIDE = 64
CPU = torch.device("cpu")
TINY = SegmentationSettings(image_size=SIDE, epochs=4, batch_size=4, lr=1e-3, min_lr=1e-5,
                            aspp_channels=16, decoder_channels=16, low_channels=8)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> SegmentationData:
    """8 tiny pin trays with their true component maps as labels (6 to train, 2 held out)."""
    out = tmp_path_factory.mktemp("seg_train")
    generate(SynthSettings(out=out, categories=("pin_tray",), n_train=8, n_validation=2, n_test_good=2,
                           n_logical=2, n_structural=2, size=SIDE))
    samples = load_category(out / "pin_tray").select("train", "good")
    images = tuple(resize_image(load_rgb(s.path), SIDE) for s in samples)
    maps = tuple(resize_label_map(np.asarray(load_rgb(s.component_path))[..., 0], SIDE) for s in samples)
    classes = json.loads((out / "pin_tray" / "synth_info.json").read_text())["classes"]
    return SegmentationData(images[:6], maps[:6], images[6:], maps[6:], images[6:],
                            {int(k): v for k, v in classes.items()}, {})


def _train(data, folder: Path, settings=TINY, **kwargs):
    return train_segmentation(data, settings, folder, CPU, **kwargs)


def test_training_lowers_the_loss_and_records_every_epoch(data, tmp_path):
    result = _train(data, tmp_path, dataclasses.replace(TINY, epochs=12, lr=3e-3))
    supervised = [r["ce"] + r["dice"] + r["focal"] for r in result.history]
    assert [r["epoch"] for r in result.history] == list(range(1, 13))
    assert supervised[-1] < 0.7 * supervised[0]
    assert result.history[-1]["miou"] > result.history[0]["miou"]
    assert all(r["miou"] is not None and 0 <= r["miou"] <= 1 for r in result.history)
    # The D_U losses join at the stage boundary (a third of the epochs), not before.
    assert "hist" not in result.history[0] and "hist" in result.history[-1]
    saved = json.loads((tmp_path / HISTORY).read_text())  # the same records as plain JSON
    assert saved["epochs_done"] == 12 and saved["history"] == list(result.history)


class Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_as_if_never_stopped(data, tmp_path):
    straight = _train(data, tmp_path / "straight")
    steps = 2  # 6 training images, batch 4

    def kill_in_third_epoch(stage: str, done: int, total: int) -> None:
        if done == 2 * steps + 1:  # first step of epoch 3: epoch 2's checkpoint is on disk
            raise Killed

    with pytest.raises(Killed):
        _train(data, tmp_path / "killed", progress=kill_in_third_epoch)
    at_kill = load_checkpoint(tmp_path / "killed" / CHECKPOINT)
    assert at_kill.epochs_done == 2 and [r["epoch"] for r in at_kill.history] == [1, 2]

    ran: list[int] = []
    resumed = _train(data, tmp_path / "killed", on_epoch=lambda record: ran.append(record["epoch"]))
    assert resumed.resumed_from == 2 and ran == [3, 4]  # only the missing epochs were trained
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["loss"] for r in resumed.history[:2]] == [r["loss"] for r in straight.history[:2]]
    for name, value in straight.net.head_state_dict().items():
        torch.testing.assert_close(resumed.net.head_state_dict()[name], value, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(resumed.history[2:], straight.history[2:]):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)


def test_a_kill_right_after_a_checkpoint_resumes_at_the_next_epoch(data, tmp_path):
    def kill_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        _train(data, tmp_path, on_epoch=kill_after_two)
    assert load_checkpoint(tmp_path / CHECKPOINT).epochs_done == 2
    assert _train(data, tmp_path).resumed_from == 2


def test_other_settings_start_over_instead_of_resuming(data, tmp_path):
    _train(data, tmp_path, dataclasses.replace(TINY, epochs=2))
    again = _train(data, tmp_path, dataclasses.replace(TINY, epochs=2, lr=5e-4))
    assert again.resumed_from == 0
    finished = _train(data, tmp_path, dataclasses.replace(TINY, epochs=2, lr=5e-4))
    assert finished.resumed_from == 2 and len(finished.history) == 2  # nothing left to do


def test_checkpoint_round_trip_predicts_identically(data, tmp_path):
    result = _train(data, tmp_path, dataclasses.replace(TINY, epochs=2))
    saved = load_checkpoint(result.checkpoint)
    assert saved.settings == dataclasses.replace(TINY, epochs=2)
    assert saved.class_names == data.class_names and saved.epochs_done == 2
    assert list(saved.history) == list(result.history)
    reloaded = build_network(saved, CPU)
    images = list(data.holdout_images)
    for ours, theirs in zip(predict_labels(result.net, images, SIDE), predict_labels(reloaded, images, SIDE)):
        np.testing.assert_array_equal(ours, theirs)


def test_a_foreign_file_is_not_a_checkpoint(tmp_path):
    from pipeline.workspace.files import atomic_save_safetensors

    atomic_save_safetensors(tmp_path / "x.safetensors", {"a": torch.zeros(1)}, {"format": "something-else"})
    with pytest.raises(ValueError, match="not a segmentation checkpoint"):
        load_checkpoint(tmp_path / "x.safetensors")


def test_cosine_schedule_runs_from_lr_to_min_lr():
    settings = dataclasses.replace(TINY, epochs=5, lr=1e-3, min_lr=1e-5)
    rates = [cosine_lr(e, settings) for e in range(5)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[2] == pytest.approx((1e-3 + 1e-5) / 2)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_mean_iou_matches_a_hand_computed_case():
    truth = [np.array([[0, 0, 1, 1]])]
    pred = [np.array([[0, 1, 1, 1]])]
    # background: 1 shared of 2 in the union; class 1: 2 shared of 3.
    assert mean_iou(pred, truth) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert mean_iou(truth, truth) == 1.0


def test_other_pseudo_labels_start_over_instead_of_resuming(data, tmp_path):
    _train(data, tmp_path, dataclasses.replace(TINY, epochs=2))
    edited = list(data.train_maps)
    edited[0] = np.zeros_like(edited[0])  # e.g. a component rejected on the Masks page
    changed = dataclasses.replace(data, train_maps=tuple(edited))
    assert changed.fingerprint() != data.fingerprint()
    assert _train(changed, tmp_path, dataclasses.replace(TINY, epochs=2)).resumed_from == 0


def test_confidence_weights_of_one_train_like_the_hard_split_and_low_weights_train_differently(data, tmp_path):
    hard = _train(data, tmp_path / "hard")
    ones = _train(dataclasses.replace(data, train_weights=(1.0,) * 6), tmp_path / "ones")
    parts = ("ce", "dice", "focal", "hist", "entropy")
    for a, b in zip(hard.history, ones.history):
        assert set(a) == set(b)
        for name in parts:
            if name in a:
                assert b[name] == pytest.approx(a[name], rel=1e-3, abs=1e-5)
    doubted = _train(dataclasses.replace(data, train_weights=(1.0, 1.0, 1.0, 0.1, 0.1, 0.1)), tmp_path / "doubted")
    assert doubted.history[0]["ce"] != pytest.approx(hard.history[0]["ce"], rel=1e-3)
