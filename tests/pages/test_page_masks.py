"""Masks page: the build button, the per-image overlay, rejecting components, typed boxes and regions."""

from __future__ import annotations

from pipeline.pseudolabels import curation, edits, store
from pipeline.workspace import Workspace

PAGE = "pages/masks.py"
CATEGORY = "pin_tray"


def _keep_toggles(at) -> list:
    return [t for t in at.toggle if t.key.startswith("keep::")]


def _parts(toggle) -> tuple[str, int]:
    """``keep::<category>::<image key>::<component id>::<rejected>`` -> (image key, component id)."""
    _, _, image_key, component, _ = toggle.key.split("::")
    return image_key, int(component)


def test_build_button_creates_the_pseudo_labels(app, pl_copy):
    ws_path = pl_copy("ready")
    at = app.open(ws_path, PAGE)
    assert at.info[0].value.startswith("No masks yet for **pin_tray**")
    assert not _keep_toggles(at) and not at.get("image")
    # The settings start from the stored (fast) ones; the adapters are picked explicitly.
    assert at.slider("masks_bg::pin_tray").value == 0.95
    at.selectbox("masks_detector").set_value("none")
    at.selectbox("masks_segmenter").set_value("classic")
    at.slider("masks_bw::pin_tray").set_value(0.25)
    assert at.number_input("masks_refine::pin_tray").value == 0  # the classical segmenter's defaults
    at.number_input("masks_refine::pin_tray").set_value(2)
    at.number_input("masks_thin::pin_tray").set_value(2.0)
    at.button("build_masks").click()
    app.run(at)

    state = store.load_state(Workspace.open(ws_path), CATEGORY)
    assert state.done and len(state.components) == 4 and state.cluster_names and state.n_components > 0
    assert state.run["settings"]["features"]["variants"] is False  # the stored settings were used
    assert state.run["settings"]["clusters"]["bandwidth_quantile"] == 0.25  # ...with the page's changes
    assert state.run["settings"]["classic"]["refine_iterations"] == 2
    assert state.run["settings"]["classic"]["min_thickness"] == 2.0
    [success] = at.success
    assert "4 training images" in success.value and "segmenter: classical region proposals" in success.value
    assert {m.label: m.value for m in at.metric}["Clusters"] == str(len(state.cluster_names))
    assert len(at.get("image")) == 1  # the overlay of the first image
    assert len(_keep_toggles(at)) > 0 and all(t.value for t in _keep_toggles(at))


def test_rejecting_a_component_persists(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    toggle = _keep_toggles(at)[0]
    image_key, component = _parts(toggle)
    assert component in curation.component_clusters(Workspace.open(ws_path), CATEGORY, image_key)
    overlay = at.get("image")[0].proto.imgs[0].url

    toggle.set_value(False)
    app.run(at)
    ws = Workspace.open(ws_path)
    assert curation.rejected_components(ws, CATEGORY, image_key) == {component}
    assert component not in curation.component_clusters(ws, CATEGORY, image_key)  # left out of the clusters
    assert at.get("image")[0].proto.imgs[0].url != overlay  # drawn grey now
    assert not at.error

    # A reload shows it rejected; switching it back on restores it.
    again = app.open(ws_path, PAGE)
    [rejected] = [t for t in _keep_toggles(again) if _parts(t) == (image_key, component)]
    assert rejected.value is False and "rejected" in rejected.label
    rejected.set_value(True)
    app.run(again)
    assert curation.rejected_components(Workspace.open(ws_path), CATEGORY, image_key) == set()


def test_typed_box_is_stored_for_the_manual_detector(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    at.radio("box_mode").set_value("typed")
    app.run(at)
    for name, value in (("x0", 10), ("y0", 20), ("x1", 60), ("y1", 50)):
        at.number_input(f"box_rect_{name}").set_value(value)
    at.selectbox("box_tag").set_value("pin")
    at.button("add_box").click()
    app.run(at)
    image_key = at.selectbox("masks_pick").options[0].split(" · ")[1]
    boxes = edits.manual_boxes(Workspace.open(ws_path), CATEGORY)
    assert list(boxes) == [image_key]
    [box] = boxes[image_key]
    assert (box.x0, box.y0, box.x1, box.y1, box.tag) == (10, 20, 60, 50, "pin")
    assert "1 box(es) stored" in at.success[0].value
    assert list(at.dataframe[0].value["tag"]) == ["pin"]

    at.button("clear_boxes").click()
    app.run(at)
    assert edits.manual_boxes(Workspace.open(ws_path), CATEGORY) == {}


def test_typed_region_adds_a_component_and_undo_removes_it(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    before = len(_keep_toggles(at))
    image_key = _parts(_keep_toggles(at)[0])[0]
    at.radio("region_mode").set_value("typed")
    app.run(at)
    for name, value in (("x0", 0), ("y0", 0), ("x1", 12), ("y1", 12)):
        at.number_input(f"region_rect_{name}").set_value(value)
    at.button("region_add").click()
    app.run(at)
    ws = Workspace.open(ws_path)
    [edit] = edits.load_edits(ws, CATEGORY, image_key)
    assert edit.kind == "add" and edit.mask.sum() == 144
    new_id = edits.effective_components(ws, CATEGORY, image_key).count
    assert new_id in curation.component_clusters(ws, CATEGORY, image_key)  # clustered with the others
    assert len(_keep_toggles(at)) == before + 1
    assert at.success[0].value.startswith(f"Added component #{new_id}")

    at.button("region_undo").click()
    app.run(at)
    assert edits.load_edits(Workspace.open(ws_path), CATEGORY, image_key) == []
    assert len(_keep_toggles(at)) == before


def test_next_moves_to_the_next_image(app, pl_copy):
    ws_path = pl_copy("built")
    at = app.open(ws_path, PAGE)
    first = _parts(_keep_toggles(at)[0])[0]
    at.button("masks_next").click()
    app.run(at)
    assert at.selectbox("masks_pick").value == 1
    assert _parts(_keep_toggles(at)[0])[0] != first
    assert at.get("image")[0].proto.imgs[0].caption.startswith("train/good/")
