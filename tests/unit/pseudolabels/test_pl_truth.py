"""The generator's true component maps stored as pseudo-labels (for measuring the segmenter)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.discover import load_category
from pipeline.data.registered import register_category
from pipeline.data.samples import DataError
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.segmentation.data import load_segmentation_data
from pipeline.pseudolabels import store
from pipeline.pseudolabels.truth import store_true_labels
from pipeline.workspace import Workspace


def test_true_maps_become_reliable_pseudo_labels_the_segmenter_reads(tmp_path):
    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=("pin_tray",), n_train=6, n_validation=1, n_test_good=1,
                           n_logical=1, n_structural=1, size=48))
    ws = Workspace.create(tmp_path / "ws")
    register_category(ws, data, "pin_tray")
    assert store_true_labels(ws, "pin_tray") == 6

    state = store.load_state(ws, "pin_tray")
    assert state.done and len(state.reliable) == 6 and not state.unreliable
    assert state.cluster_names == {1: "tray", 2: "divider", 3: "pin"}
    loaded = load_segmentation_data(ws, "pin_tray", side=48, holdout_fraction=0.2)
    assert len(loaded.train_images) == 5 and len(loaded.holdout_images) == 1 and not loaded.unlabelled_images
    truth = {s.key: np.array(Image.open(s.component_path)) for s in load_category(data / "pin_tray").select("train")}
    for key, label_map in zip(loaded.keys["train"], loaded.train_maps):
        np.testing.assert_array_equal(label_map, truth[key])


def test_data_without_true_maps_is_refused(tmp_path):
    good = tmp_path / "plain" / "good"
    good.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(good / f"{i}.png")
    ws = Workspace.create(tmp_path / "ws")
    register_category(ws, tmp_path, "plain")
    with pytest.raises(DataError, match="no true component maps"):
        store_true_labels(ws, "plain")
