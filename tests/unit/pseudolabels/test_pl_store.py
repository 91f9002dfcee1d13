"""Pseudo-label files in the workspace: round trips, cache keys, region edits, the state summary."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pseudolabels import edits, store
from pipeline.pseudolabels.edits import RegionEdit
from pipeline.pseudolabels.types import Clustering, ImageComponents, Reliability
from pipeline.workspace import Workspace

KEY = "train/good/000.png"


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


def _components(key: str = KEY) -> ImageComponents:
    instances = np.zeros((20, 30), np.int32)
    instances[2:5, 2:5] = 1
    instances[10:15, 10:20] = 2
    return ImageComponents(key, instances, instances == 0, ("auto", "box:pin"))


def test_components_round_trip_and_cache_key(ws):
    store.save_components(ws, "cat", _components(), "key-1")
    loaded = store.load_components(ws, "cat", KEY)
    assert loaded.sources == ("auto", "box:pin") and loaded.count == 2
    np.testing.assert_array_equal(loaded.instances, _components().instances)
    np.testing.assert_array_equal(loaded.background, _components().background)
    assert store.has_components(ws, "cat", KEY, "key-1")
    assert not store.has_components(ws, "cat", KEY, "key-2")
    assert not store.has_components(ws, "cat", "train/good/001.png", "key-1")
    path = store.image_file(ws, "cat", "components", KEY, ".npz")
    assert path == ws.category_dir("cat") / "pseudo_labels" / "components" / "train" / "good" / "000.png.npz"
    assert not list(path.parent.glob(".*.tmp"))  # atomic writer left no temp file


def test_cache_key_depends_on_image_bytes_and_parts(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"one")
    first = store.cache_key("classic", ["pin"], image_path=image)
    assert first == store.cache_key("classic", ["pin"], image_path=image)
    assert first != store.cache_key("classic", ["pin", "tray"], image_path=image)
    image.write_bytes(b"two")
    assert first != store.cache_key("classic", ["pin"], image_path=image)


def test_image_keys_cannot_leave_the_folder(ws):
    for bad in ("../x.png", "/etc/passwd", "a/../../b.png", ""):
        with pytest.raises(ValueError):
            store.image_file(ws, "cat", "components", bad)


def test_features_clustering_label_map_reliability_round_trip(ws):
    store.save_features(ws, "cat", KEY, np.ones((2, 4)), np.array([1, 2]), "f-key")
    features, ids = store.load_features(ws, "cat", KEY)
    assert features.dtype == np.float32 and features.shape == (2, 4) and ids.tolist() == [1, 2]
    assert store.features_key(ws, "cat", KEY) == "f-key"
    with pytest.raises(ValueError):
        store.save_features(ws, "cat", KEY, np.ones((3, 4)), np.array([1, 2]), "f-key")
    assert store.load_colours(ws, "cat", KEY) is None  # stored without colours (older workspaces)
    colours = np.array([[50, 0, 40], [90, 1, -2]], np.float32)
    store.save_features(ws, "cat", KEY, np.ones((2, 4)), np.array([1, 2]), "f-key", colours)
    np.testing.assert_array_equal(store.load_colours(ws, "cat", KEY), colours)

    clustering = Clustering((KEY, KEY), np.array([1, 2]), np.array([1, 2]), {1: "pin", 2: "tray"},
                            np.ones((2, 4), np.float32))
    store.save_clustering(ws, "cat", clustering, {"inputs": "abc"})
    loaded, meta = store.load_clustering_meta(ws, "cat")
    assert loaded.names == {1: "pin", 2: "tray"} and loaded.image_keys == (KEY, KEY) and meta == {"inputs": "abc"}
    np.testing.assert_array_equal(loaded.labels, [1, 2])

    label_map = np.arange(600, dtype=np.uint8).reshape(20, 30) % 3
    store.save_label_map(ws, "cat", KEY, label_map)
    np.testing.assert_array_equal(store.load_label_map(ws, "cat", KEY), label_map)
    assert store.load_label_map(ws, "cat", "train/good/001.png") is None

    split = Reliability((KEY,), np.zeros((1, 3), np.float32), np.array([True]), np.array([False]), np.array([0.5]))
    store.save_reliability(ws, "cat", split, "inputs-1")
    loaded_split = store.load_reliability(ws, "cat")
    assert loaded_split.reliable.tolist() == [True] and loaded_split.automatic.tolist() == [False]
    assert store.reliability_inputs(ws, "cat") == "inputs-1"


def test_region_edits_add_on_top_and_erase_without_renumbering(ws):
    store.save_components(ws, "cat", _components(), "key-1")
    drawn = np.zeros((20, 30), bool)
    drawn[3:12, 3:12] = True  # over component 1 and part of 2
    erased = np.zeros((20, 30), bool)
    erased[2:5, 2:5] = True  # all that is left of component 1
    edits.save_edits(ws, "cat", KEY, [RegionEdit("add", drawn, "clip"), RegionEdit("erase", erased)])
    assert [(e.kind, e.tag) for e in edits.load_edits(ws, "cat", KEY)] == [("add", "clip"), ("erase", "")]
    effective = edits.effective_components(ws, "cat", KEY)
    assert effective.sources == ("auto", "box:pin", "drawn:clip") and effective.count == 3
    assert not (effective.instances == 1).any()  # fully covered/erased, id 1 is kept but empty
    assert (effective.instances[5:12, 5:12] == 3).all() and not effective.background[drawn].any()
    compact, ids = edits.nonempty(effective)
    assert ids.tolist() == [2, 3] and compact.sources == ("box:pin", "drawn:clip")
    assert set(np.unique(compact.instances)) == {0, 1, 2}

    version = edits.component_version(ws, "cat", KEY)
    edits.save_edits(ws, "cat", KEY, [])
    assert edits.component_version(ws, "cat", KEY) != version
    assert edits.effective_components(ws, "cat", KEY).count == 2


def test_settings_update_is_read_modify_write_per_item(ws):
    edits.update_setting(ws, "cat", edits.OVERRIDES, lambda s: {**s, "a.png": True}, {})
    edits.update_setting(ws, "cat", edits.OVERRIDES, lambda s: {**s, "b.png": False}, {})
    assert Workspace.open(ws.path).get_setting(edits.OVERRIDES, category="cat") == {"a.png": True, "b.png": False}
    assert edits.reliability_overrides(ws, "cat") == {"a.png": True, "b.png": False}


def test_state_summarises_what_exists(ws):
    assert store.load_state(ws, "cat") == store.PseudoLabelState("cat")
    store.save_components(ws, "cat", _components(), "key-1")
    store.save_clustering(ws, "cat", Clustering((KEY, KEY), np.array([1, 2]), np.array([1, 1]), {1: "pin"}))
    store.save_label_map(ws, "cat", KEY, np.zeros((20, 30), np.uint8))
    store.write_json(ws, "cat", "run.json", {"detector": "none", "segmenter": "classic"})
    state = store.load_state(ws, "cat")
    assert state.components == (KEY,) and state.features == () and state.label_maps == (KEY,)
    assert state.cluster_sizes == {1: 2} and state.n_components == 2 and state.run["segmenter"] == "classic"
    assert not state.done
