"""``pipeline.deploy`` asks the registry: every method that declares a bundle round-trips, the
bench times what the specs declare, and what cannot be exported is refused with the registry's list."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.deploy import bench
from pipeline.deploy.bundle import BundleError, detector_parts, load_bundle_detector, read_bundle, write_bundle
from pipeline.methods import METHODS, BenchStages, bundle_method_names
from pipeline.methods.aecsad.random_model import random_lgst_detector
from pipeline.methods.histogram.random_model import random_histogram_detector
from pipeline.methods.instant.random_model import random_instant_detector
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.models.backbones import build_backbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_SEG = dict(image_size=64, aspp_channels=8, decoder_channels=8, low_channels=8)
TINY_LGST = dict(image_size=64, grid=16, channels=16, local_width=(8, 16), global_width=8)


def _seg() -> SegmentationSettings:
    return SegmentationSettings.for_profile("quick", **TINY_SEG)


def _histogram():
    return random_histogram_detector(_seg(), build_backbone("efficientnet_lite0", checkpoint=None, device="cpu"))


# A random-weight detector per method that declares a bundle: a new one must add its builder here.
RANDOM_DETECTORS = {
    "aecsad": lambda: random_lgst_detector("quick", attention=True, seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST),
    "csad": lambda: random_lgst_detector("quick", attention=False, seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST),
    "histogram": _histogram,
    "instant": lambda: random_instant_detector("quick", n_train=2),
}


def _images(n=2, side=72):
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8) for _ in range(n)]


def test_every_bundle_method_has_a_round_trip_case():
    assert set(RANDOM_DETECTORS) == set(bundle_method_names())


@pytest.mark.parametrize("method", sorted(RANDOM_DETECTORS))
def test_every_method_with_a_bundle_round_trips(method, tmp_path):
    detector = RANDOM_DETECTORS[method]()
    assert detector.method == method
    config, tensors = detector_parts(detector, _seg() if METHODS[method].segments else None)
    write_bundle(tmp_path / "m.bundle", config, tensors)
    bundle = read_bundle(tmp_path / "m.bundle")
    assert bundle.method == method
    loaded = load_bundle_detector(bundle)
    assert type(loaded) is type(detector)
    for a, b in zip(detector.predict(_images()), loaded.predict(_images())):
        assert a.score == b.score and a.branch_scores == b.branch_scores and a.explanations == b.explanations
        np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)


def test_a_method_without_a_bundle_is_refused_with_the_registry_list():
    class Detector:
        method = "zeroshot"

    with pytest.raises(BundleError, match="cannot bundle a Detector; supported methods: aecsad, csad, histogram, instant"):
        detector_parts(Detector())


def test_a_surface_model_is_refused():
    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    detector.hist = None
    with pytest.raises(BundleError, match="fitted on a surface"):
        detector_parts(detector, _seg())


def test_segmenting_methods_need_the_segmenter_settings():
    with pytest.raises(BundleError, match="needs its SegmentationSettings"):
        detector_parts(_histogram())


def test_the_bench_runs_the_stages_a_spec_declares(monkeypatch):
    timing = {"median_s": 1.0, "per_image_s": 1.0, "n": 1, "mad_s": 0.0, "images_per_s": 1.0}
    seen = []

    def measure(run, shared):
        seen.append((run.profile, sorted(run.images)))
        return {"kind": "method", "stages": {}, "end_to_end": {"batch1": timing, "batch8": timing}}, object()

    monkeypatch.setitem(METHODS, "instant", replace(METHODS["instant"], bench=BenchStages(measure)))
    result = bench.run_bench(bench.BenchOptions(device="cpu", methods=("instant",), repeats=1))
    assert seen == [("quick", [1, bench.THROUGHPUT_BATCH])]
    assert result["methods"]["instant"]["end_to_end"]["batch1"] is timing and "target" not in result
