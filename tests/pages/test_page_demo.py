"""The demo in the app: its banner on the first page, Inspect and Evaluate filled without a Train click."""

from __future__ import annotations


def _banner(at) -> list[str]:
    return [i.value for i in at.info if i.value.startswith("**This is the demo workspace**")]


def test_banner_on_the_demo_workspace_with_links_to_the_next_pages(app, tiny_demo):
    at = app.open(tiny_demo / "workspace")
    [banner] = _banner(at)
    assert "instant detector is already fitted and evaluated on pin_tray" in banner
    links = [link.proto.label for link in at.get("page_link")]
    assert links[:6] == ["Inspect", "Evaluate", "Tags", "Masks", "Clusters", "Train AeCSAD"]


def test_no_banner_on_another_workspace(app, page_workspaces):
    assert _banner(app.open(page_workspaces["evaluated"])) == []


def test_inspect_opens_on_the_worst_test_image_with_its_heat_map(app, tiny_demo):
    at = app.open(tiny_demo / "workspace", "pages/inspect.py")
    assert at.selectbox("inspect_pick").value == 0 and at.selectbox("inspect_pick").options[0].startswith("#1 ·")
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert "Final anomaly map over the image (green: above the threshold)" in captions
    assert not any(c.value.startswith("Not evaluated yet") for c in at.caption)  # sorted by stored test scores


def test_evaluate_shows_the_roc_curves_at_once(app, tiny_demo):
    at = app.open(tiny_demo / "workspace", "pages/evaluate.py")
    assert at.button("run_evaluation").label == "Re-evaluate"
    assert [c.value for c in at.subheader][:2] == ["ROC curves per defect kind", "Image AUROC (%)"]
