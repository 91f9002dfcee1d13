"""The ``pseudo-labels`` and ``tags`` commands: happy path with ``--export``, one-line errors, exit 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.__main__ import main
from pipeline.data.synth import SynthSettings, generate
from pipeline.pseudolabels import store
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "pin_tray"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pl_cli_data")
    generate(SynthSettings(out=out, categories=(CATEGORY,), n_train=4, n_validation=2, n_test_good=2,
                           n_logical=2, n_structural=2, size=96))
    return out


@pytest.fixture(autouse=True)
def small_features(monkeypatch):
    """The command's default settings, with one small crop per component instead of 8 rotated/
    flipped 64 px ones: these tests are about the command, not the pseudo-labels' quality."""
    from pipeline.pseudolabels import settings

    defaults = settings.PseudoLabelSettings()
    fast = dataclasses.replace(defaults, features=dataclasses.replace(defaults.features, variants=False, crop_size=32))
    factory = lambda: fast  # noqa: E731
    factory.from_dict = settings.PseudoLabelSettings.from_dict
    monkeypatch.setattr(settings, "PseudoLabelSettings", factory)


def _cli(*args: object) -> int:
    return main([str(a) for a in args])


def _pseudo_labels(data: Path, ws: Path, *extra: object) -> int:
    return _cli("pseudo-labels", "--data", data, "--category", CATEGORY, "--workspace", ws,
                "--segmenter", "classic", "--device", "cpu", *extra)


def test_pseudo_labels_prints_adapters_and_summary_and_exports(data, tmp_path, capsys):
    out = tmp_path / "maps"
    assert _pseudo_labels(data, tmp_path / "ws", "--detector", "none", "--seed", "3", "--export", out) == 0
    printed = capsys.readouterr().out
    assert "segmenter: classical region proposals" in printed and "detector: no detector" in printed
    assert "components found" in printed and "clusters" in printed and "reliable:" in printed
    assert "exported 4 label maps" in printed
    assert "confidence: 4 images:" in printed and "weighting off" in printed
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["000.png", "001.png", "002.png", "003.png"]
    ws = Workspace.open(tmp_path / "ws")
    for path in files:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (96, 96)
            np.testing.assert_array_equal(np.array(image), store.load_label_map(ws, CATEGORY, f"train/good/{path.name}"))
    assert Workspace.open(tmp_path / "ws").category(CATEGORY).name == CATEGORY

    assert _pseudo_labels(data, tmp_path / "ws", "--detector", "none", "--seed", "3") == 0
    assert "4 training images (4 reused from the workspace)" in capsys.readouterr().out


def test_pseudo_labels_reuses_the_settings_stored_by_the_masks_page(data, tmp_path, capsys):
    from pipeline.pseudolabels.edits import SETTINGS
    from pipeline.pseudolabels.settings import PseudoLabelSettings

    assert _pseudo_labels(data, tmp_path / "ws", "--detector", "none") == 0
    ws = Workspace.open(tmp_path / "ws")
    tuned = PseudoLabelSettings().to_dict()
    tuned["masks"]["min_area"] = 77
    ws.set_setting(SETTINGS, tuned, category=CATEGORY)
    capsys.readouterr()

    assert _pseudo_labels(data, tmp_path / "ws", "--detector", "none") == 0
    assert "settings: stored in the workspace" in capsys.readouterr().out
    assert ws.get_setting(SETTINGS, None, category=CATEGORY)["masks"]["min_area"] == 77

    assert _pseudo_labels(data, tmp_path / "ws", "--detector", "none", "--default-settings") == 0
    assert "settings: defaults" in capsys.readouterr().out
    assert ws.get_setting(SETTINGS, None, category=CATEGORY)["masks"]["min_area"] == 50


def test_set_changes_a_setting_for_the_run_and_stores_it(data, tmp_path, capsys):
    from pipeline.pseudolabels.edits import SETTINGS

    ws_path = tmp_path / "ws"
    assert _pseudo_labels(data, ws_path, "--detector", "none", "--set", "classic.refine_iterations=2",
                          "--set", "clusters.bandwidth_quantile=0.4") == 0
    assert "changed: classic.refine_iterations=2, clusters.bandwidth_quantile=0.4" in capsys.readouterr().out
    ws = Workspace.open(ws_path)
    stored = ws.get_setting(SETTINGS, None, category=CATEGORY)
    assert stored["classic"]["refine_iterations"] == 2 and stored["clusters"]["bandwidth_quantile"] == 0.4
    assert store.load_state(ws, CATEGORY).run["settings"]["classic"]["refine_iterations"] == 2

    assert _pseudo_labels(data, ws_path, "--detector", "none") == 0  # the next run starts from them
    assert "4 reused from the workspace" in capsys.readouterr().out
    assert ws.get_setting(SETTINGS, None, category=CATEGORY)["classic"]["refine_iterations"] == 2


@pytest.mark.parametrize("args, message", [
    (("--category", "nope"), "no category 'nope'"),
    (("--detector", "manual"), "manual detector needs boxes"),
    (("--device", "tpu"), ""),
    (("--set", "classic.refine_iteratons=2"), "unknown setting 'classic.refine_iteratons'"),
    (("--set", "clusters.bandwidth_quantile=wide"), "takes float, got 'wide'"),
])
def test_pseudo_labels_bad_input_exits_2_with_one_line(data, tmp_path, capsys, args, message):
    base = ["pseudo-labels", "--data", data, "--category", CATEGORY, "--workspace", tmp_path / "ws",
            "--segmenter", "classic"]
    assert _cli(*base, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_pseudo_labels_unknown_choice_is_a_usage_error(data, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        _pseudo_labels(data, tmp_path / "ws", "--detector", "yolo")
    assert exit_info.value.code == 2


def test_tags_lists_suggestions_and_records_decisions(data, tmp_path, capsys):
    ws = tmp_path / "ws"
    assert _cli("import", "--workspace", ws, "--data", data, "--categories", CATEGORY) == 0
    assert _cli("tags", "--workspace", ws, "--category", CATEGORY, "--no-imagenet",
                "--keep", "pin", "Tray", "--drop", "divider", "--background", "table") == 0
    printed = capsys.readouterr().out
    assert "taggers: " in printed and "next run prompts (curated): pin, tray; background: table" in printed
    listed = {line.split()[0]: line.split()[-1] for line in printed.splitlines() if line.startswith("divider ")}
    assert listed == {"divider": "drop"}
    assert Workspace.open(ws).tags(CATEGORY) == {"divider": "drop", "pin": "keep", "table": "background",
                                                 "tray": "keep"}


def test_tags_on_an_unknown_category_or_workspace_exits_2(data, tmp_path, capsys):
    assert _cli("tags", "--workspace", tmp_path / "missing", "--category", CATEGORY, "--no-imagenet") == 2
    Workspace.create(tmp_path / "ws")
    assert _cli("tags", "--workspace", tmp_path / "ws", "--category", CATEGORY, "--no-imagenet") == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") for e in errors) and "unknown category" in errors[1]
