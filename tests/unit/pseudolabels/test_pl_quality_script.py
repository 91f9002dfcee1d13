"""The oracle map of scripts/pseudo_label_quality.py (segmentation-only ceiling of the ARI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from pseudo_label_quality import oracle_map  # noqa: E402


def test_each_component_takes_its_majority_true_class():
    instances = np.array([[1, 1, 2, 0], [1, 1, 2, 2]])
    truth = np.array([[3, 3, 1, 0], [3, 1, 1, 0]])
    np.testing.assert_array_equal(oracle_map(instances, truth), [[3, 3, 1, 0], [3, 3, 1, 1]])


def test_a_component_on_background_only_stays_unlabelled():
    instances = np.array([[1, 2]])
    truth = np.array([[0, 2]])
    np.testing.assert_array_equal(oracle_map(instances, truth), [[0, 2]])


def test_the_simulated_user_boxes_every_part_of_the_named_classes_on_the_first_images(tiny_synth):
    import json

    import pytest

    from pipeline.data.discover import load_category
    from pipeline.data.images import load_rgb
    from pseudo_label_quality import drawn_boxes

    root = tiny_synth / "pin_tray"
    samples = load_category(root).select("train", "good")
    drawn = drawn_boxes(root, samples, ["pin"], references=2)
    assert list(drawn) == [s.key for s in samples[:2]]
    pin = int(next(k for k, name in json.loads((root / "synth_info.json").read_text())["classes"].items()
                   if name == "pin"))
    for sample in samples[:2]:
        truth = np.asarray(load_rgb(sample.component_path))[..., 0] == pin
        boxes = drawn[sample.key]
        covered = np.zeros_like(truth)
        for b in boxes:
            assert b.tag == "pin" and truth[int(b.y0):int(b.y1), int(b.x0):int(b.x1)].any()
            covered[int(b.y0):int(b.y1), int(b.x0):int(b.x1)] = True
        assert covered[truth].all() and len(boxes) >= 2  # every pin pixel inside a box, one box per pin
    with pytest.raises(SystemExit, match="no class lid"):
        drawn_boxes(root, samples, ["lid"], references=1)
