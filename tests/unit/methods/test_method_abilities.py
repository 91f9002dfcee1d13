"""What each method declares it can do (``MethodSpec``) and the registry's light import."""

from __future__ import annotations

import subprocess
import sys

from pipeline.methods import (
    BENCH_ORDER, METHODS, bench_method_names, bundle_method_names, get_method, lgst_method_names, method_names,
    onnx_method_names, segmenting_method_names,
)


def test_the_registry_imports_without_torch():
    """The CLI's parser may take its method choices from the registry: importing it stays light."""
    code = "import sys, pipeline.methods; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_abilities_of_the_methods():
    assert method_names() == ("instant", "histogram", "aecsad", "csad", "zeroshot")
    assert bundle_method_names() == ("aecsad", "csad", "histogram", "instant")
    assert onnx_method_names() == ("aecsad", "csad")
    assert lgst_method_names() == ("aecsad", "csad")
    assert segmenting_method_names() == ("histogram", "aecsad", "csad")
    assert bench_method_names() == ("aecsad", "csad", "instant")
    assert get_method("aecsad").attention and not get_method("csad").attention
    assert [s.name for s in METHODS.values() if s.bench is not None and s.bench.headline] == ["aecsad"]


def test_bench_order_lists_exactly_the_benchmarked_methods():
    assert set(BENCH_ORDER) == {spec for spec in METHODS.values() if spec.bench is not None}
    assert len(BENCH_ORDER) == len(set(BENCH_ORDER))


def test_branch_maps_in_the_inspect_order():
    order = ["local", "global", "teacher_global", "segmentation", "retrieval", "histogram"]
    for name in ("aecsad", "csad"):
        assert [b.name for b in get_method(name).branch_maps] == order
    assert [b.name for b in get_method("histogram").branch_maps] == ["segmentation", "retrieval"]
    assert get_method("instant").branch_maps == () and get_method("zeroshot").branch_maps == ()
    histogram = {b.name: b for b in get_method("aecsad").branch_maps}["histogram"]
    assert histogram.label == "Histogram cells" and histogram.value_range == (0.0, 4.0)
    assert "bright = 4 or more training spreads" in histogram.meaning
    for spec in METHODS.values():
        for branch in spec.branch_maps:
            assert branch.label and branch.meaning.strip() and "\n" not in branch.meaning
