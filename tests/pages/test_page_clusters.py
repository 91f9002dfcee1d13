"""Clusters page: gallery, rename, merge, split, move, the reliability override, the label-map preview."""

from __future__ import annotations

import re

import numpy as np

from pipeline.pseudolabels import curation, edits, store
from pipeline.workspace import Workspace

PAGE = "pages/clusters.py"
CATEGORY = "pin_tray"


def _names(ws_path) -> dict[int, str]:
    return store.load_clustering(Workspace.open(ws_path), CATEGORY).names


def _name_fields(at) -> dict[int, object]:
    """cluster id -> its name field (key ``cluster_name::<category>::<id>::<name>``)."""
    return {int(t.key.split("::")[2]): t for t in at.text_input if t.key.startswith("cluster_name::")}


def test_without_clusters_it_points_to_the_masks_page(app, pl_workspaces):
    at = app.open(pl_workspaces["ready"], PAGE)
    assert [i.value for i in at.info] == ["No clusters yet for **pin_tray**. Build masks on the Masks page first."]
    assert [link.proto.label for link in at.get("page_link")] == ["Go to Masks"]
    assert not at.text_input and not at.get("image")


def test_gallery_rows_and_label_map_preview(app, pl_workspaces):
    ws_path = pl_workspaces["built"]
    at = app.open(ws_path, PAGE)
    members = curation.cluster_members(Workspace.open(ws_path), CATEGORY)
    fields = _name_fields(at)
    assert {c: f.value for c, f in fields.items()} == _names(ws_path)
    texts = [m.value for m in at.markdown]
    for cluster, listed in members.items():
        assert f"**{len(listed)}** component(s)" in texts
    # One strip per cluster, up to 10 thumbnails captioned "<file> #<component>".
    captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
    thumbnails = [c for c in captions if re.fullmatch(r"\d+\.png #\d+", c)]
    assert len(thumbnails) == sum(min(len(listed), 10) for listed in members.values())
    assert any(c.endswith(": coloured by cluster") for c in captions)
    assert "Label map (what the segmentation network learns)" in captions
    assert not at.error


def test_rename_and_merge_change_the_stored_clusters(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    _name_fields(at)[1].input("pin head")
    app.run(at)
    assert _names(ws_path)[1] == "pin head"
    assert _name_fields(at)[1].value == "pin head"
    _name_fields(at)[1].input("   ")  # refused: the stored name stays and shows again
    app.run(at)
    assert [e.value for e in at.error] == ["a cluster name cannot be empty"]
    assert _names(ws_path)[1] == "pin head" and _name_fields(at)[1].value == "pin head"

    before = _names(ws_path)
    sizes = {c: len(m) for c, m in curation.cluster_members(Workspace.open(ws_path), CATEGORY).items()}
    at.selectbox("merge_keep").set_value(1)
    at.selectbox("merge_other").set_value(2)
    at.button("merge_button").click()
    app.run(at)
    after = _names(ws_path)
    assert len(after) == len(before) - 1 and after[1] == "pin head"
    merged = {c: len(m) for c, m in curation.cluster_members(Workspace.open(ws_path), CATEGORY).items()}
    assert merged[1] == sizes[1] + sizes[2]
    assert curation.cluster_log(Workspace.open(ws_path), CATEGORY)[-1].op == "merge"
    assert at.success[0].value == "Merged cluster 2 into pin head."
    assert len(_name_fields(at)) == len(after)


def test_split_and_move(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    n = len(_names(ws_path))
    at.selectbox("split_cluster").set_value(1)
    at.button("split_button").click()
    app.run(at)
    assert len(_names(ws_path)) == n + 1 and not at.error

    at.selectbox("move_from").set_value(1)
    app.run(at)
    image_key, component = curation.cluster_members(Workspace.open(ws_path), CATEGORY)[1][0]
    at.selectbox("move_member").set_value(0)
    at.selectbox("move_to").set_value(0)  # a cluster of its own
    at.button("move_button").click()
    app.run(at)
    clusters = curation.component_clusters(Workspace.open(ws_path), CATEGORY, image_key)
    assert clusters[component] == n + 2
    assert at.success[0].value == f"Moved {image_key} #{component}."


def test_reliability_override_persists(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    split = store.load_reliability(Workspace.open(ws_path), CATEGORY)
    image_key = split.image_keys[1]
    table = at.dataframe[0].value
    assert list(table["image"]) == list(split.image_keys)
    at.selectbox("override_image").set_value(image_key)
    app.run(at)
    target = "unreliable" if split.reliable[1] else "reliable"
    at.radio(f"override::{CATEGORY}::{image_key}::auto").set_value(target)
    app.run(at)

    ws = Workspace.open(ws_path)
    assert edits.reliability_overrides(ws, CATEGORY) == {image_key: target == "reliable"}
    stored = store.load_reliability(ws, CATEGORY)
    assert bool(stored.reliable[1]) == (target == "reliable")
    np.testing.assert_array_equal(stored.automatic, split.automatic)
    row = at.dataframe[0].value.set_index("image").loc[image_key]
    assert row["by hand"] == row["counts as"] != row["automatic"]

    # A fresh session shows the override; "automatic split" removes it.
    again = app.open(ws_path, PAGE)
    again.selectbox("override_image").set_value(image_key)
    app.run(again)
    radio = again.radio(f"override::{CATEGORY}::{image_key}::{target}")
    assert radio.value == target
    radio.set_value("auto")
    app.run(again)
    assert edits.reliability_overrides(Workspace.open(ws_path), CATEGORY) == {}


def test_confidence_column_and_typed_override_persist(app, pl_copy):
    from pipeline.pseudolabels import confidence

    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    found = confidence.image_confidence(Workspace.open(ws_path), CATEGORY)
    table = at.dataframe[0].value.set_index("image")
    np.testing.assert_allclose(table["confidence (auto)"], np.round(found.automatic, 3))
    image_key = found.image_keys[2]
    at.selectbox("override_image").set_value(image_key)
    app.run(at)
    field = at.text_input(f"confidence::{CATEGORY}::{image_key}::auto")
    assert field.value == "auto"
    field.input("0.4")
    app.run(at)
    assert confidence.confidence_overrides(Workspace.open(ws_path), CATEGORY) == {image_key: 0.4}
    row = at.dataframe[0].value.set_index("image").loc[image_key]
    assert row["confidence"] == 0.4 and row["confidence by hand"] == "0.4"

    # A value out of range is refused and the stored one shows again; "auto" removes it.
    field = at.text_input(f"confidence::{CATEGORY}::{image_key}::0.4")
    field.input("1.7")
    app.run(at)
    assert [e.value for e in at.error] == ["a confidence must lie between 0 and 1, got 1.7"]
    assert confidence.confidence_overrides(Workspace.open(ws_path), CATEGORY) == {image_key: 0.4}
    assert at.text_input(f"confidence::{CATEGORY}::{image_key}::0.4").value == "0.4"
    at.text_input(f"confidence::{CATEGORY}::{image_key}::0.4").input("auto")
    app.run(at)
    assert confidence.confidence_overrides(Workspace.open(ws_path), CATEGORY) == {}


def test_confidence_weighting_toggle_persists_and_changes_the_summary(app, pl_copy):
    from pipeline.pseudolabels import confidence

    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    toggle = at.toggle(f"confidence_weighting::{CATEGORY}")
    assert toggle.value is False
    assert any("images train the segmentation network" in m.value for m in at.markdown)
    toggle.set_value(True)
    app.run(at)
    assert confidence.weighting_enabled(Workspace.open(ws_path), CATEGORY)
    assert any(m.value.startswith("Confidence weighting: **") for m in at.markdown)

    again = app.open(ws_path, PAGE)  # a fresh session shows the stored choice
    assert again.toggle(f"confidence_weighting::{CATEGORY}").value is True
    again.toggle(f"confidence_weighting::{CATEGORY}").set_value(False)
    app.run(again)
    assert not confidence.weighting_enabled(Workspace.open(ws_path), CATEGORY)
