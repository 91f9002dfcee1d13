"""Inspect page on a fitted and evaluated workspace: worst-first list, metrics, navigation, overlay."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.workspace import Workspace

PAGE = "pages/inspect.py"


@pytest.fixture
def inspect_at(app, page_workspaces):
    return app.open(page_workspaces["evaluated"], PAGE)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _file_of(option: str) -> str:
    """``#1 · logical · 002.png · 50.770`` (``⚠ #1 ...`` when borderline) -> ``002.png``."""
    return option.split(" · ")[2]


def test_worst_first_with_score_threshold_and_verdict(inspect_at, page_workspaces):
    at = inspect_at
    ws = Workspace.open(page_workspaces["evaluated"])
    stored = ws.scores("pin_tray", "instant", split="test")
    threshold = ws.get_threshold("pin_tray", "instant")

    pick = at.selectbox("inspect_pick")
    assert pick.value == 0
    assert len(pick.options) == len(stored) == 16
    # The list is the stored test scores, highest first, labelled with rank, kind and score.
    listed = [float(o.rsplit(" · ", 1)[1]) for o in pick.options]
    assert listed == sorted(listed, reverse=True)
    assert [f"{s.score:.3f}" for s in stored] == [f"{v:.3f}" for v in listed]
    worst = stored[0]
    assert pick.options[0] == f"#1 · {worst.kind} · {worst.image_key.rsplit('/', 1)[1]} · {worst.score:.3f}"

    # The picked image is the worst one, scored again by the loaded model, with the stored threshold.
    metrics = _metrics(at)
    assert set(metrics) == {"Score", "Threshold", "Verdict"}
    assert float(metrics["Score"]) == pytest.approx(worst.score, abs=2e-3)
    assert metrics["Threshold"] == f"{threshold:.3f}"
    assert metrics["Verdict"].split(" (")[0] == ("ANOMALOUS" if worst.score > threshold else "good")

    images = at.get("image")
    assert len(images) == 4  # image (with outline), overlay, its colour scale, heat map alone
    assert images[0].proto.imgs[0].caption.startswith(f"{worst.image_key} (")
    assert images[1].proto.imgs[0].caption == "Final anomaly map over the image (green: above the threshold)"
    # the scale names the threshold's map level: for instant (score = map peak) the threshold itself
    assert f"the threshold's level ({threshold:.3g})" in images[2].proto.imgs[0].caption


def test_the_above_threshold_outline_can_be_switched_off(app, inspect_at, page_workspaces):
    at = inspect_at
    worst = Workspace.open(page_workspaces["evaluated"]).scores("pin_tray", "instant", split="test")[0]
    assert worst.score > Workspace.open(page_workspaces["evaluated"]).get_threshold("pin_tray", "instant")
    outlined = at.get("image")[1].proto.imgs[0].url
    at.toggle("show_above").set_value(False)
    app.run(at)
    final = at.get("image")[1].proto.imgs[0]
    assert final.caption == "Final anomaly map over the image" and final.url != outlined


def test_next_and_previous_move_through_the_list(app, inspect_at):
    at = inspect_at
    options = at.selectbox("inspect_pick").options
    first_caption = at.get("image")[0].proto.imgs[0].caption
    first_score = _metrics(at)["Score"]

    at.button("next_image").click()
    app.run(at)
    assert at.selectbox("inspect_pick").value == 1
    caption = at.get("image")[0].proto.imgs[0].caption
    assert caption != first_caption
    assert _file_of(options[1]) in caption
    assert float(_metrics(at)["Score"]) <= float(first_score) + 2e-3

    at.button("prev_image").click()
    app.run(at)
    assert at.selectbox("inspect_pick").value == 0
    assert at.get("image")[0].proto.imgs[0].caption == first_caption

    # Previous at the top of the list stays there; picking from the list works too.
    at.button("prev_image").click()
    app.run(at)
    assert at.selectbox("inspect_pick").value == 0
    at.selectbox("inspect_pick").set_value(len(options) - 1)
    app.run(at)
    assert _file_of(options[-1]) in at.get("image")[0].proto.imgs[0].caption
    at.button("next_image").click()
    app.run(at)
    assert at.selectbox("inspect_pick").value == len(options) - 1


def test_opacity_and_ground_truth_outline_change_the_pictures(app, inspect_at):
    at = inspect_at
    defect = next(i for i, o in enumerate(at.selectbox("inspect_pick").options) if " · good · " not in o)
    at.selectbox("inspect_pick").set_value(defect)
    app.run(at)
    assert not at.toggle("show_gt").disabled  # defects of the synthetic data have masks
    at.toggle("show_gt").set_value(True)
    app.run(at)
    urls = [img.proto.imgs[0].url for img in at.get("image")]

    at.slider("opacity").set_value(1.0)
    app.run(at)
    after_opacity = [img.proto.imgs[0].url for img in at.get("image")]
    assert after_opacity[0] == urls[0]  # the plain image does not depend on the opacity
    assert after_opacity[1] != urls[1]  # the overlay does

    at.toggle("show_gt").set_value(False)
    app.run(at)
    after_toggle = [img.proto.imgs[0].url for img in at.get("image")]
    assert after_toggle[0] != after_opacity[0]  # outline gone from the image
    assert after_toggle[2] == after_opacity[2]  # the heat map alone is unchanged


def test_validation_split_lists_the_good_validation_images(app, inspect_at, page_workspaces):
    at = inspect_at
    at.radio("inspect_split").set_value("validation")
    app.run(at)
    stored = Workspace.open(page_workspaces["evaluated"]).scores("pin_tray", "instant", split="validation")
    options = at.selectbox("inspect_pick").options
    assert len(options) == len(stored) == 4
    assert all(" · good · " in o for o in options)
    assert at.toggle("show_gt").disabled  # good images have no ground-truth mask


def test_unevaluated_model_lists_in_file_order(app, page_workspaces):
    at = app.open(page_workspaces["fitted"], PAGE)
    assert any("Not evaluated yet" in c.value for c in at.caption)
    options = at.selectbox("inspect_pick").options
    assert all(o.endswith("not scored") for o in options)
    assert options[0].startswith("#1 · good · ")  # test/good comes first in file order
    assert set(_metrics(at)) == {"Score", "Threshold", "Verdict"}


def test_a_methods_explanations_are_listed_under_the_maps(app, workspace_copy, monkeypatch):
    """Methods that say why (the histogram branch) get their sentences shown; a copied workspace
    keeps the cached predictions of other tests out of the way."""
    import dataclasses

    from pipeline.methods.instant.model import InstantDetector

    original = InstantDetector.predict
    sentence = "grid cell top-left: class 'pin' count 0, expected 1; area 0.0% of the cell, typically 2.1%"

    def explained(self, images):
        return [dataclasses.replace(p, explanations=(sentence,)) for p in original(self, images)]

    monkeypatch.setattr(InstantDetector, "predict", explained)
    at = app.open(workspace_copy("evaluated"), PAGE)
    assert not at.exception
    assert any(sentence in m.value for m in at.markdown)


# --- every method: branch maps, verdict, resolution ------------------------------------------

BRANCH_KEYS = ["branch_local", "branch_global", "branch_teacher_global", "branch_segmentation", "branch_retrieval",
               "branch_histogram"]


@pytest.fixture
def image_sizes(monkeypatch):
    """``{media file id: (width, height)}`` of every picture a page run sends (what the browser gets)."""
    import io

    from PIL import Image
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    sizes: dict[str, tuple[int, int]] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, bytes) and mimetype.startswith("image/"):
            sizes[file_id] = Image.open(io.BytesIO(path_or_data)).size
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return sizes


def _size_of(image, sizes) -> tuple[int, int]:
    from pathlib import PurePosixPath

    return sizes[PurePosixPath(image.proto.imgs[0].url).stem]


def _pictures(at) -> list:
    """The page's images without the colour-scale bar (checked on its own)."""
    return [img for img in at.get("image") if not img.proto.imgs[0].caption.startswith("dark: ")]


def _captions(at) -> list[str]:
    return [img.proto.imgs[0].caption for img in _pictures(at)]


@pytest.fixture
def aecsad_at(app, aecsad_workspace):
    at = app.open(aecsad_workspace, PAGE)
    at.selectbox("inspect_method").set_value("aecsad")
    return app.run(at)


def test_instant_has_no_branch_toggles(inspect_at):
    assert not [t for t in inspect_at.toggle if t.key.startswith("branch_")]
    assert not any(e.label == "Branch scores" for e in inspect_at.expander)


def test_aecsad_lists_worst_first_and_has_a_toggle_per_branch(aecsad_at, aecsad_workspace):
    at = aecsad_at
    stored = Workspace.open(aecsad_workspace).scores("pin_tray", "aecsad", split="test")
    options = at.selectbox("inspect_pick").options
    assert [o.rsplit(" · ", 1)[1] for o in options] == [f"{s.score:.3f}" for s in stored]  # worst first
    assert [t.key for t in at.toggle if t.key.startswith("branch_")] == BRANCH_KEYS
    assert [at.toggle(k).label for k in BRANCH_KEYS] == [
        "Local student", "Global student", "Teacher vs global", "Predicted segmentation", "Patch retrieval",
        "Histogram cells"]
    assert not any(at.toggle(k).value for k in BRANCH_KEYS)
    assert len(at.get("image")) == 4  # image, final map, its colour scale, heat map alone
    scores = next(df.value for df in at.dataframe if "branch" in df.value.columns)
    assert {"lgst", "lgst_local", "lgst_global", "histogram_global", "histogram_grid"} <= set(scores["branch"])
    fused = scores.dropna()
    counted = fused[fused["in the score"].astype(bool)]
    assert len(fused) == 5 and len(counted) == 3  # five fused branches (no part colours on this tiny fit)
    left_out = fused[~fused["in the score"].astype(bool)]
    assert counted["z"].min() >= left_out["z"].max()
    assert float(_metrics(at)["Score"]) == pytest.approx(counted["z"].sum(), abs=5e-3)  # the three largest z
    assert any("sum of this image's 3 largest branch z-scores" in c.value for c in at.caption)


def test_branch_maps_are_drawn_at_the_image_resolution(app, aecsad_at, image_sizes):
    at = aecsad_at
    for key in BRANCH_KEYS:
        at.toggle(key).set_value(True)
    app.run(at)
    images = _pictures(at)
    assert len(images) == 3 + len(BRANCH_KEYS)
    captions = _captions(at)
    assert captions[0].endswith("(128×128 px)")  # the maps come at the segmenter's 96 px side
    assert [c.split(":")[0] for c in captions[2:8]] == [
        "Local student", "Global student", "Teacher vs global", "Predicted segmentation", "Patch retrieval",
        "Histogram cells"]
    assert "1 = " in captions[5]  # the segmentation legend names the part classes
    assert {_size_of(img, image_sizes) for img in images} == {(128, 128)}

    # The opacity reaches every map, not the plain image.
    before = [img.proto.imgs[0].url for img in images]
    at.slider("opacity").set_value(0.9)
    app.run(at)
    after = [img.proto.imgs[0].url for img in _pictures(at)]
    assert after[0] == before[0] and all(a != b for a, b in zip(after[1:7], before[1:7]))

    at.toggle("branch_local").set_value(False)
    app.run(at)
    assert len(_pictures(at)) == 2 + len(BRANCH_KEYS) and "Local student" not in " ".join(_captions(at))


def test_verdict_follows_the_current_threshold(app, workspace_copy):
    ws_path = workspace_copy("evaluated")
    ws = Workspace.open(ws_path)
    worst = ws.scores("pin_tray", "instant", split="test")[0]
    ws.set_threshold("pin_tray", "instant", worst.score + 1.0, note="test: above every score")
    at = app.open(ws_path, PAGE)
    assert _metrics(at)["Verdict"].split(" (")[0] == "good"
    ws.set_threshold("pin_tray", "instant", worst.score - 1.0, note="test: below the worst")
    app.run(at)
    metrics = _metrics(at)
    assert metrics["Verdict"].split(" (")[0] == "ANOMALOUS" and metrics["Threshold"] == f"{worst.score - 1.0:.3f}"


# --- verdict confidence and the user's label (issue 8) ------------------------------------

def _spread(ws: Workspace) -> float:
    val = np.array([r.score for r in ws.scores("pin_tray", "instant", split="validation")])
    low, high = np.percentile(val, [20, 80])
    kept = val[(val >= low) & (val <= high)]
    return float(kept.std()) if kept.std() >= 1e-3 else 1.0


def test_a_verdict_near_the_threshold_is_marked_borderline(app, workspace_copy):
    ws_path = workspace_copy("evaluated")
    ws = Workspace.open(ws_path)
    stored = ws.scores("pin_tray", "instant", split="test")
    spread = _spread(ws)
    threshold = stored[0].score - 0.1 * spread  # the worst image lies 0.1 spreads above it
    ws.set_threshold("pin_tray", "instant", threshold, note="test")
    at = app.open(ws_path, PAGE)
    [verdict] = [m for m in at.metric if m.label == "Verdict"]
    assert verdict.value == "ANOMALOUS (borderline)"
    assert verdict.proto.delta == "+0.10 spreads"
    assert any("borderline: worth a human look" in w.value for w in at.warning)

    expected = [r for r in stored if abs(r.score - threshold) / spread < 0.5]
    options = at.selectbox("inspect_pick").options
    assert [o for o in options if o.startswith("⚠ ")] == [o for o in options if float(o.rsplit(" · ", 1)[1]) in
                                                          {float(f"{r.score:.3f}") for r in expected}]
    at.toggle("only_borderline").set_value(True)
    app.run(at)
    assert len(at.selectbox("inspect_pick").options) == len(expected)

    at.number_input("borderline_band").set_value(0.05)  # narrower than the worst image's margin
    app.run(at)
    [verdict] = [m for m in at.metric if m.label == "Verdict"]
    assert verdict.value == "ANOMALOUS"
    assert Workspace.open(ws_path).get_setting("borderline_within", {}, category="pin_tray") == {"instant": 0.05}


def test_marking_an_image_bad_is_saved_in_the_workspace(app, workspace_copy):
    ws_path = workspace_copy("evaluated")
    at = app.open(ws_path, PAGE)
    worst = Workspace.open(ws_path).scores("pin_tray", "instant", split="test")[0]
    control = at.button_group(key=f"label_{worst.image_key}")
    assert control.value == "unlabelled"
    control.set_value("structural")
    app.run(at)
    assert Workspace.open(ws_path).image_labels("pin_tray") == {worst.image_key: "structural"}
    at.button_group(key=f"label_{worst.image_key}").set_value("unlabelled")
    app.run(at)
    assert Workspace.open(ws_path).image_labels("pin_tray") == {}
