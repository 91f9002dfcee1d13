"""scripts/real_benchmark.py on a tiny synthetic category: JSON rows, Markdown table, --skip-fitted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pipeline.data.synth import SynthSettings, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import real_benchmark  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rb_synth")
    generate(SynthSettings(out=out, categories=("pin_tray",), seed=3, n_train=6, n_validation=2, n_test_good=2,
                           n_logical=2, n_structural=2, size=96))
    return out


def test_rows_and_table_then_a_reused_fit(synth, tmp_path):
    out = tmp_path / "results.json"
    argv = ["--synth", str(synth), "--methods", "instant", "--workspace", str(tmp_path / "ws"), "--out", str(out)]
    assert real_benchmark.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["run"]["command"][1:] == argv and report["run"]["machine"]["device"] == "cpu"
    [row] = report["rows"]
    assert (row["set"], row["category"], row["method"], row["reused_fit"]) == ("synth", "pin_tray", "instant", False)
    assert (row["n_train"], row["n_test"]) == (6, 6) and row["fit_seconds"] > 0 and row["eval_seconds"] > 0
    for kind in ("logical", "structural", "mean"):
        assert 0 <= row["auroc"][kind] <= 1 and 0 <= row["aupro"][kind] <= 1
    assert row["subtype_auroc"] and all(0 <= v["auroc"] <= 1 for v in row["subtype_auroc"].values())
    table = out.with_suffix(".md").read_text()
    assert "| synth | pin_tray | instant | 6 | 6 |" in table and "types:" in table

    assert real_benchmark.main([*argv, "--skip-fitted"]) == 0
    [again] = json.loads(out.read_text())["rows"]
    assert again["reused_fit"] and again["auroc"] == row["auroc"]


def test_a_category_name_twice_or_an_untrained_setting_is_one_error_line(synth, tmp_path, capsys):
    common = ["--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "r.json"), "--methods", "instant"]
    assert real_benchmark.main(["--real", str(synth), "--synth", str(synth), *common]) == 2
    assert "category 'pin_tray' is in" in capsys.readouterr().err
    assert real_benchmark.main(["--synth", str(synth), "--set", "lgst.steps=5", *common]) == 2
    assert "no method of instant trains lgst" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
