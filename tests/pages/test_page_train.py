"""Train page: build the instant detector and evaluate it from the page."""

from __future__ import annotations

from pipeline.workspace import Workspace

PAGE = "pages/train.py"


def test_fit_and_evaluate_buttons(app, workspace_copy):
    ws_path = workspace_copy("data")
    ws = Workspace.open(ws_path)
    at = app.open(ws_path, PAGE)
    assert at.selectbox("train_category").value == "pin_tray"
    assert at.selectbox("train_method").value == "instant"
    assert at.button("evaluate_button").disabled  # nothing to evaluate before a build
    assert not at.success and not at.dataframe

    at.selectbox("train_device").set_value("cpu")
    at.number_input("train_seed").set_value(3)
    at.button("fit_button").click()
    app.run(at)
    record = ws.model_record("pin_tray", "instant")
    assert record is not None
    assert (record.settings["profile"], record.settings["device"], record.settings["seed"]) == ("quick", "cpu", 3)
    assert ws.get_threshold("pin_tray", "instant") is not None
    assert len(ws.scores("pin_tray", "instant", split="validation")) == 4
    assert not at.error
    [success] = at.success
    assert success.value.startswith("Built ") and "**pin_tray** from 10 good images" in success.value
    assert "of 4 good validation images" in success.value
    [table] = at.dataframe
    assert list(table.value["method"]) == ["instant"]
    assert not at.button("evaluate_button").disabled

    at.button("evaluate_button").click()
    app.run(at)
    assert [s.value for s in at.success] == ["Evaluated **pin_tray** on 16 test images."]
    assert len(ws.scores("pin_tray", "instant", split="test")) == 16
    auroc = ws.model_record("pin_tray", "instant").metrics["auroc"]
    row = at.dataframe[0].value.iloc[0]
    assert row["AUROC logical"] == auroc["logical"] and row["AUROC structural"] == auroc["structural"]


def test_inspect_and_evaluate_ask_for_a_build_first(app, page_workspaces):
    for page in ("pages/inspect.py", "pages/evaluate.py"):
        at = app.open(page_workspaces["data"], page)
        assert len(at.info) == 1 and at.info[0].value.startswith("No instant model for **pin_tray** yet.")
        assert not at.get("image") and not at.get("plotly_chart")
