"""``fit --set part.field=value``: training settings read, type-checked and refused where they do
not apply, before anything is written."""

from __future__ import annotations

import pytest

from pipeline.__main__ import main
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.training_settings import check_training_settings, parse_training_settings


def test_values_are_read_as_json_and_tuples_come_back_as_tuples():
    changes = parse_training_settings(["lgst.steps=700", "lgst.lr=0.0005", "lgst.quantiles=[0.8, 0.99]",
                                       "segmentation.epochs=30", "segmentation.max_class_weight=null"])
    assert changes == {"lgst": {"steps": 700, "lr": 0.0005, "quantiles": (0.8, 0.99)},
                       "segmentation": {"epochs": 30, "max_class_weight": None}}
    settings = LgstSettings.for_profile("quick", **changes["lgst"])
    assert (settings.steps, settings.quantiles, settings.batch_size) == (700, (0.8, 0.99), 4)  # the rest: quick


@pytest.mark.parametrize(("text", "message"), [
    ("lgst.stepz=10", "unknown setting 'lgst.stepz'"),
    ("students.steps=10", "unknown setting 'students.steps'"),
    ("lgst.steps", "unknown setting 'lgst.steps'"),
    ("lgst.steps=1.5", "takes int, got 1.5"),
    ("segmentation.epochs=true", "takes int, got True"),
    ("lgst.seed=3", "use --seed"),
    ("lgst.attention=false", "csad"),
    ("segmentation.confidence_weighting=true", "--confidence-weighting"),
])
def test_a_wrong_setting_is_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_training_settings([text])


def test_a_part_the_method_does_not_train_is_refused():
    with pytest.raises(ValueError, match="'histogram' does not train lgst"):
        check_training_settings("histogram", ("segmentation",), {"lgst": {"steps": 3}})
    with pytest.raises(ValueError, match="takes int"):  # stored changes (a job's) are checked again
        check_training_settings("aecsad", ("segmentation", "lgst"), {"lgst": {"steps": "many"}})
    assert check_training_settings("aecsad", ("segmentation", "lgst"), {"lgst": {"quantiles": [0.8, 0.9]}}) == {
        "lgst": {"quantiles": (0.8, 0.9)}}


@pytest.mark.parametrize(("method", "setting", "message"), [
    ("instant", "lgst.steps=3", "'instant' does not train lgst (it trains: retrieval)"),
    ("aecsad", "lgst.step=3", "unknown setting 'lgst.step'"),
])
def test_fit_exits_2_in_one_line_before_writing_anything(tiny_synth, tmp_path, capsys, method, setting, message):
    ws = tmp_path / "ws"
    code = main(["fit", "--data", str(tiny_synth), "--category", "pin_tray", "--workspace", str(ws),
                 "--method", method, "--device", "cpu", "--set", setting])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not ws.exists()


def test_retrieval_settings_reach_the_instant_bank(tiny_synth, tmp_path):
    ws = tmp_path / "ws"
    code = main(["fit", "--data", str(tiny_synth), "--category", "pin_tray", "--workspace", str(ws),
                 "--method", "instant", "--device", "cpu", "--set", 'retrieval.layers=["s16","s32"]',
                 "--set", "retrieval.max_bank=64"])
    assert code == 0
    from pipeline.methods.instant.model import load_instant

    model = load_instant(ws / "categories" / "pin_tray" / "instant")
    assert model.settings.layers == ("s16", "s32")
    assert model.good_bank.shape == (64, 112 + 320)  # EfficientNet-Lite0 s16 + s32 channels


def test_an_unknown_retrieval_stage_is_one_line(tiny_synth, tmp_path, capsys):
    code = main(["fit", "--data", str(tiny_synth), "--category", "pin_tray", "--workspace", str(tmp_path / "ws"),
                 "--method", "instant", "--device", "cpu", "--set", 'retrieval.layers=["s64"]'])
    assert code == 2
    assert "has no stage ['s64']" in capsys.readouterr().err
