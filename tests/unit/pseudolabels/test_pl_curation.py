"""Curation edits: each is persisted (survives reopening the workspace) and the stored label maps
and reliability split follow it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.pseudolabels import curation, store
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.edits import manual_boxes
from pipeline.pseudolabels.run import run_pseudo_labels
from pipeline.pseudolabels.settings import PseudoLabelSettings
from pipeline.pseudolabels.tag_curation import add_custom_tags, category_tags, set_tag_status
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "pin_tray"
DEFAULTS = PseudoLabelSettings()
FAST = dataclasses.replace(DEFAULTS, features=dataclasses.replace(DEFAULTS.features, variants=False, crop_size=32))
"""One small crop per component instead of 8 rotated/flipped 64 px ones: these tests are about edits, not quality."""


def _run(ws: Workspace):
    return run_pseudo_labels(ws, CATEGORY, FAST, detector="none", segmenter="classic", device="cpu")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A workspace after one run, copied by ``ws`` for each test (data stays where it is)."""
    root = tmp_path_factory.mktemp("pl_curation")
    generate(SynthSettings(out=root / "data", categories=(CATEGORY,), n_train=6, n_validation=2, n_test_good=2,
                           n_logical=2, n_structural=2, size=128))
    ws = Workspace.create(root / "ws")
    register_category(ws, root / "data", CATEGORY)
    _run(ws)
    return ws.path


@pytest.fixture
def ws(base, tmp_path) -> Workspace:
    shutil.copytree(base, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


def _reopen(ws: Workspace) -> Workspace:
    return Workspace.open(ws.path)


def _expected_map(ws: Workspace, key: str) -> np.ndarray:
    """The label map painted by hand from the stored components and clustering."""
    components = curation.edits.effective_components(ws, CATEGORY, key)
    lookup = np.zeros(components.count + 1, np.uint8)
    for cid, label in curation.component_clusters(ws, CATEGORY, key).items():
        lookup[cid] = label
    return lookup[components.instances]


def _all_maps(ws: Workspace) -> dict[str, np.ndarray]:
    keys = store.read_json(ws, CATEGORY, "run.json")["images"]
    return {key: store.load_label_map(ws, CATEGORY, key) for key in keys}


def _biggest_clusters(ws: Workspace, n: int = 2) -> list[int]:
    sizes = {cid: len(m) for cid, m in curation.cluster_members(ws, CATEGORY).items()}
    if len(sizes) < n:  # these tests are about edits, not about how many clusters a tiny run finds
        curation.split_cluster(ws, CATEGORY, max(sizes, key=sizes.get), n_clusters=n)
        return _biggest_clusters(ws, n)
    return sorted(sizes, key=lambda c: (-sizes[c], c))[:n]


def test_merge_repaints_the_label_maps_and_survives_reopening(ws):
    keep, other = sorted(_biggest_clusters(ws))
    before = _all_maps(ws)
    n_before = len(store.load_clustering(ws, CATEGORY).names)
    new_id = curation.merge_clusters(ws, CATEGORY, keep, other)
    assert new_id == keep  # keep < other: ids below the removed one do not move
    reopened = _reopen(ws)
    clustering = store.load_clustering(reopened, CATEGORY)
    assert len(clustering.names) == n_before - 1 and sorted(clustering.names) == list(range(1, n_before))
    for key, old in before.items():
        expected = old.copy()
        expected[old == other] = keep
        expected[old > other] -= 1
        np.testing.assert_array_equal(store.load_label_map(reopened, CATEGORY, key), expected)
    assert curation.cluster_log(reopened, CATEGORY)[-1].op == "merge"
    assert store.load_reliability(reopened, CATEGORY).histograms.shape[1] == n_before  # classes + background
    # A re-run with unchanged inputs keeps the edited clustering.
    assert _run(reopened).clustering == "kept"
    assert store.load_clustering(reopened, CATEGORY).names == clustering.names


def test_split_rename_and_move_persist(ws):
    biggest = _biggest_clusters(ws, 1)[0]
    n_before = len(store.load_clustering(ws, CATEGORY).names)
    parts = curation.split_cluster(ws, CATEGORY, biggest, n_clusters=2)
    assert parts[0] == biggest and len(parts) == 2 and parts[1] == n_before + 1
    curation.rename_cluster(ws, CATEGORY, parts[1], "pin head")
    key, cid = curation.cluster_members(ws, CATEGORY)[parts[1]][0]
    target = curation.move_component(ws, CATEGORY, key, cid, biggest)
    assert target == biggest
    alone = curation.move_component(ws, CATEGORY, key, cid, None)  # a cluster of its own

    reopened = _reopen(ws)
    names = store.load_clustering(reopened, CATEGORY).names
    assert names[parts[1]] == "pin head" and names[alone] == f"cluster {alone}"
    assert curation.component_clusters(reopened, CATEGORY, key)[cid] == alone
    np.testing.assert_array_equal(store.load_label_map(reopened, CATEGORY, key), _expected_map(reopened, key))
    assert [e.op for e in curation.cluster_log(reopened, CATEGORY)] == ["split", "rename", "move", "move"]
    with pytest.raises(ValueError, match="no cluster"):
        curation.merge_clusters(reopened, CATEGORY, 1, 99)


def test_reliability_override_persists_and_can_be_undone(ws):
    split = store.load_reliability(ws, CATEGORY)
    key, automatic = split.image_keys[0], bool(split.automatic[0])
    curation.set_reliability_override(ws, CATEGORY, key, not automatic)
    reopened = store.load_reliability(_reopen(ws), CATEGORY)
    assert bool(reopened.reliable[0]) is (not automatic) and bool(reopened.automatic[0]) is automatic
    curation.set_reliability_override(ws, CATEGORY, key, None)
    assert bool(store.load_reliability(ws, CATEGORY).reliable[0]) is automatic
    with pytest.raises(ValueError, match="not a training image"):
        curation.set_reliability_override(ws, CATEGORY, "test/good/000.png", True)


def test_rejected_component_leaves_the_label_map_until_accepted(ws):
    key, cid = curation.cluster_members(ws, CATEGORY)[_biggest_clusters(ws, 1)[0]][0]
    pixels = curation.edits.effective_components(ws, CATEGORY, key).instances == cid
    curation.set_component_rejected(ws, CATEGORY, key, cid, device="cpu")
    reopened = _reopen(ws)
    assert curation.rejected_components(reopened, CATEGORY, key) == {cid}
    assert cid not in curation.component_clusters(reopened, CATEGORY, key)
    assert (store.load_label_map(reopened, CATEGORY, key)[pixels] == 0).all()
    curation.set_component_rejected(reopened, CATEGORY, key, cid, rejected=False, device="cpu")
    assert curation.component_clusters(reopened, CATEGORY, key)[cid] > 0
    assert (store.load_label_map(reopened, CATEGORY, key)[pixels] > 0).all()


def test_drawn_region_becomes_a_component_and_erase_removes_pixels(ws):
    key = store.read_json(ws, CATEGORY, "run.json")["images"]
    key = next(iter(key))
    shape = curation.edits.effective_components(ws, CATEGORY, key).instances.shape
    region = np.zeros(shape, bool)
    region[5:15, 5:15] = True
    new_id = curation.add_region(ws, CATEGORY, key, region, "Pin", device="cpu")
    reopened = _reopen(ws)
    components = curation.edits.effective_components(reopened, CATEGORY, key)
    assert components.sources[new_id - 1] == "drawn:pin" and (components.instances[region] == new_id).all()
    label = curation.component_clusters(reopened, CATEGORY, key)[new_id]
    assert label > 0 and (store.load_label_map(reopened, CATEGORY, key)[region] == label).all()
    curation.erase_region(reopened, CATEGORY, key, region, device="cpu")
    assert (store.load_label_map(reopened, CATEGORY, key)[region] == 0).all()
    assert new_id not in curation.component_clusters(reopened, CATEGORY, key)
    with pytest.raises(ValueError, match="shape"):
        curation.add_region(reopened, CATEGORY, key, np.ones((3, 3), bool), "pin")


def test_tag_decisions_and_drawn_boxes_persist(ws):
    assert category_tags(ws, CATEGORY).source == "vocabulary"
    set_tag_status(ws, CATEGORY, " Divider ", "drop")
    set_tag_status(ws, CATEGORY, "background", "background")
    assert "divider" not in category_tags(ws, CATEGORY).tags
    assert add_custom_tags(ws, CATEGORY, "Pin, tray lid") == ["pin", "tray lid"]
    choice = category_tags(_reopen(ws), CATEGORY)
    assert choice == type(choice)(("pin", "tray lid"), ("background",), "curated")
    with pytest.raises(Exception):
        set_tag_status(ws, CATEGORY, "pin", "maybe")

    boxes = [Box(1, 2, 30, 40, "pin"), Box(5, 5, 9, 9, "tray")]
    curation.set_boxes(ws, CATEGORY, "train/good/000.png", boxes)
    assert manual_boxes(_reopen(ws), CATEGORY) == {"train/good/000.png": boxes}
    with pytest.raises(ValueError):
        curation.set_boxes(ws, CATEGORY, "train/good/000.png", [Box(5, 5, 1, 9, "pin")])
