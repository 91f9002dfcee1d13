"""The benchmark on shrunk models: every figure is there, ratios come from the same run."""

from __future__ import annotations

import json

import pytest

from pipeline.deploy import bench
from pipeline.methods.lgst import settings as lgst_settings
from pipeline.methods.segmentation import settings as seg_settings

from .conftest import _shrink

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bench_runs_and_reports_every_figure(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "SIZE", 64)
    monkeypatch.setattr(bench, "THROUGHPUT_BATCH", 2)
    _shrink(monkeypatch, seg_settings.SegmentationSettings, image_size=64, batch_size=2, aspp_channels=8,
            decoder_channels=8, low_channels=8)
    _shrink(monkeypatch, lgst_settings.LgstSettings, image_size=64, grid=16, channels=16, local_width=(8, 16),
            global_width=8, batch_size=2)
    options = bench.BenchOptions(device="cpu", methods=("aecsad", "csad", "instant", "patchcore"), repeats=2,
                                 budget_s=0.01, n_train=2)
    result = bench.run_bench(options)
    json.dumps(result)  # JSON-ready
    methods = result["methods"]
    assert set(methods) == {"aecsad", "csad", "instant", "patchcore"}
    aecsad = methods["aecsad"]
    assert set(aecsad["stages"]) == {"preprocess", "teacher", "local_student", "global_student", "segmenter",
                                     "histogram", "retrieval", "fusion"}
    for pair in list(aecsad["stages"].values()) + [aecsad["end_to_end"]]:
        assert set(pair) == {"batch1", "batch2"}
        assert pair["batch1"]["n"] == 2 and pair["batch1"]["median_s"] > 0 and pair["batch2"]["images_per_s"] > 0
    assert aecsad["end_to_end"]["batch1"]["peak_memory_mb"] >= 0
    assert {"lgst_step", "segmenter_step"} <= set(aecsad["training"])
    assert 0 < result["attention_share_of_lgst"] < 1 and "attention" not in methods["csad"]
    assert result["ratios"]["aecsad_over_patchcore"] == pytest.approx(
        aecsad["end_to_end"]["batch1"]["per_image_s"] / methods["patchcore"]["end_to_end"]["batch1"]["per_image_s"])
    assert aecsad["stages"]["teacher"]["batch1"]["ratio_to"]["patchcore"] > 0
    assert result["aecsad_profile_top_ops"] and result["aecsad_profile_top_ops"][0]["self_cpu_ms"] > 0
    table = bench.format_table(result)
    assert "aecsad END TO END" in table and "patchcore END TO END" in table and "aecsad_over_patchcore" in table


def test_ratio_names_cover_both_references():
    timing = {"batch1": {"per_image_s": 2.0}, "batch8": {"per_image_s": 1.0}}
    results = {name: {"stages": {}, "end_to_end": json.loads(json.dumps(timing))}
               for name in ("aecsad", "efficientad_m", "patchcore")}
    results["efficientad_m"]["end_to_end"]["batch1"]["per_image_s"] = 4.0
    ratios = bench._ratios(results)
    assert ratios["aecsad_over_efficientad_m"] == 0.5 and ratios["aecsad_over_patchcore"] == 1.0
    assert ratios["aecsad_over_efficientad_m_batch8"] == 1.0


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown bench methods"):
        bench.run_bench(bench.BenchOptions(methods=("nope",)))
