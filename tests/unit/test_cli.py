"""The CLI contract (issue #2 §8): fit → evaluate JSON → predict, and one-line errors on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.__main__ import main
from pipeline.workspace import Workspace


def _cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def fitted_workspace(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("cli") / "ws"
    assert _cli("fit", "--data", tiny_synth, "--category", "bottle", "--workspace", ws, "--method", "instant", "--device", "cpu") == 0
    return ws


def test_evaluate_writes_the_contract_json(tiny_synth, fitted_workspace, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert _cli("evaluate", "--data", tiny_synth, "--category", "bottle", "--workspace", fitted_workspace,
                "--method", "instant", "--out", out, "--device", "cpu") == 0
    result = json.loads(out.read_text())
    assert result["category"] == "bottle" and result["method"] == "instant"
    assert set(result["auroc"]) >= {"logical", "structural", "mean"}
    assert set(result["aupro"]) >= {"logical", "structural", "mean"}
    assert result["n"] == {"good": 6, "logical": 4, "structural": 6}
    assert result["auroc"]["mean"] == pytest.approx((result["auroc"]["logical"] + result["auroc"]["structural"]) / 2)
    assert result["seconds"]["fit"] > 0 and result["seconds"]["evaluate"] > 0
    roc = result["roc"]["structural"]
    assert roc["fpr"][0] == 0 and roc["fpr"][-1] == 1 and len(roc["fpr"]) == len(roc["tpr"])
    # Every defect image is named by the generator; the subtypes add up to the kinds.
    info = json.loads((tiny_synth / "bottle" / "synth_info.json").read_text())
    table = result["subtype_auroc"]
    assert set(table) == {v for k, v in info["images"].items() if k.startswith("test/")}
    for kind in ("logical", "structural"):
        assert sum(row["n"] for row in table.values() if row["kind"] == kind) == result["n"][kind]
    assert "weakest anomaly subtypes:" in capsys.readouterr().out


def test_evaluate_without_a_defect_kind_reports_null(tiny_synth, fitted_workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_synth / "bottle", data / "bottle")
    shutil.rmtree(data / "bottle" / "test" / "logical_anomalies")
    out = tmp_path / "metrics.json"
    ws = tmp_path / "ws"
    shutil.copytree(fitted_workspace, ws)
    assert _cli("evaluate", "--data", data, "--category", "bottle", "--workspace", ws,
                "--method", "instant", "--out", out, "--device", "cpu") == 0
    result = json.loads(out.read_text())
    assert result["auroc"]["logical"] is None and result["n"]["logical"] == 0
    assert result["auroc"]["mean"] == result["auroc"]["structural"]
    assert result["roc"]["logical"] is None


def test_predict_writes_distinct_heatmaps_and_score_lines(tiny_synth, fitted_workspace, tmp_path):
    images = [tiny_synth / "bottle" / "test" / kind / "000.png" for kind in ("good", "structural_anomalies")]
    out = tmp_path / "pred"
    assert _cli("predict", "--workspace", fitted_workspace, "--category", "bottle", "--method", "instant",
                *images, "--out", out, "--device", "cpu") == 0
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert [Path(r["image"]) for r in rows] == images
    heatmaps = {r["heatmap"] for r in rows}
    assert len(heatmaps) == 2
    for row in rows:
        assert row["verdict"] in {"good", "anomalous"} and row["threshold"] is not None
        assert (row["verdict"] == "anomalous") == (row["score"] > row["threshold"])
        heat = Image.open(row["heatmap"])
        assert heat.size == Image.open(row["image"]).size


def test_predict_skips_an_unreadable_image_and_exits_nonzero(tiny_synth, fitted_workspace, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    good = tiny_synth / "bottle" / "test" / "good" / "001.png"
    out = tmp_path / "pred"
    assert _cli("predict", "--workspace", fitted_workspace, "--category", "bottle", "--method", "instant",
                broken, good, "--out", out, "--device", "cpu") == 1
    assert "broken.png" in capsys.readouterr().err
    assert len((out / "scores.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "--data", "{missing}", "--category", "bottle", "--workspace", "{ws}"], "does not exist"),
        (["fit", "--data", "{synth}", "--category", "nope", "--workspace", "{ws}"], "no category 'nope'"),
        (["fit", "--data", "{synth}", "--category", "bottle", "--workspace", "{ws}", "--method", "magic"], "unknown method 'magic'"),
        (["predict", "--workspace", "{ws}", "--category", "bottle", "--method", "instant", "{synth}/bottle/test/good/000.png",
          "--out", "{ws}/out"], "no fitted 'instant' model"),
        (["fit", "--data", "{synth}", "--category", "bottle", "--workspace", "{ws}", "--backbone", "wide_resnet50_2",
          "--device", "cpu"], "wide_resnet50_2-95faca4d.pth"),
    ],
    ids=["missing-data", "unknown-category", "unknown-method", "predict-before-fit", "missing-weights"],
)
def test_bad_input_is_a_one_line_error(argv, message, tiny_synth, tmp_path, capsys, isolated_weights):
    values = {"missing": tmp_path / "nowhere", "synth": tiny_synth, "ws": tmp_path / "ws"}
    Workspace.create(values["ws"])
    code = _cli(*(a.format(**{k: str(v) for k, v in values.items()}) for a in argv))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_empty_data_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty" / "bottle").mkdir(parents=True)
    assert _cli("import", "--workspace", tmp_path / "ws", "--data", tmp_path / "empty") == 2
    assert "error:" in capsys.readouterr().err


def test_module_entry_point_runs_from_another_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "synth" in done.stdout and "predict" in done.stdout


@pytest.mark.parametrize("command", ["fit", "evaluate", "predict", "synth", "demo", "import", "doctor"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "usage: python -m pipeline " + command in capsys.readouterr().out


def test_synth_command_is_deterministic_per_seed(tmp_path):
    for name in ("a", "b"):
        assert _cli("synth", "--out", tmp_path / name, "--categories", "fastener_kit", "--n-train", 3, "--n-test", 1,
                    "--size", 64, "--seed", 7) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert files
    for rel in files:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / rel)), np.asarray(Image.open(tmp_path / "b" / rel)))


def test_progress_bar_follows_a_stage_whose_length_is_re_planned(capsys):
    from pipeline.progress import TqdmProgress

    progress = TqdmProgress()
    progress("train lgst", 10, 2300)
    progress("train lgst", 20, 1600)  # a time budget planned fewer steps
    bar = progress._bar
    assert (bar.n, bar.total) == (20, 1600)
    progress.close()
