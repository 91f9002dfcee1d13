"""Per-subtype AUROC: hand-computed values, subtype lookup from ``synth_info.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.data.samples import Sample
from pipeline.metrics.subtypes import load_subtypes, subtype_aurocs


def test_each_subtype_is_ranked_against_every_good_image():
    kinds = ["good", "good", "good", "structural", "structural", "structural", "logical"]
    subtypes = [None, None, None, "bent_pin", "bent_pin", "scratch", "missing_pin"]
    scores = [0.0, 1.0, 2.0, 3.0, 0.5, 1.5, 2.5]
    branches = [{"lgst": -s, "z_lgst": s} for s in scores]
    table = subtype_aurocs(kinds, subtypes, scores, branches)
    assert list(table) == ["missing_pin", "bent_pin", "scratch"]  # logical first, then by name
    # bent_pin: 3.0 beats all three good images, 0.5 beats one -> 4 of 6 pairs.
    assert table["bent_pin"] == {"kind": "structural", "n": 2, "auroc": pytest.approx(4 / 6),
                                 "branches": {"lgst": pytest.approx(2 / 6)}}
    assert table["scratch"]["auroc"] == pytest.approx(2 / 3)
    assert table["missing_pin"]["auroc"] == pytest.approx(1.0) and table["missing_pin"]["kind"] == "logical"


def test_no_subtypes_or_no_good_images_give_an_empty_table():
    assert subtype_aurocs(["good", "structural"], [None, None], [0.0, 1.0]) == {}
    assert subtype_aurocs(["structural", "structural"], ["a", "b"], [0.0, 1.0]) == {}
    with pytest.raises(ValueError, match="differ in length"):
        subtype_aurocs(["good"], [None, None], [0.0])


def test_subtypes_are_read_by_path_relative_to_the_data_root(tmp_path: Path):
    root = tmp_path / "pin_tray"
    (root / "test" / "structural_anomalies").mkdir(parents=True)
    (root / "synth_info.json").write_text(json.dumps({"images": {"test/structural_anomalies/000.png": "bent_pin"}}))
    samples = [
        Sample(root / "test" / "structural_anomalies" / "000.png", "test", "structural"),
        Sample(root / "test" / "structural_anomalies" / "001.png", "test", "structural"),
        Sample(root / "test" / "good" / "000.png", "test", "good"),
        Sample(tmp_path / "elsewhere.png", "test", "structural"),
    ]
    assert load_subtypes(root, samples) == ["bent_pin", None, None, None]
    (root / "synth_info.json").write_text("{not json")
    assert load_subtypes(root, samples) == [None] * 4
    assert load_subtypes(tmp_path / "missing", samples) == [None] * 4
