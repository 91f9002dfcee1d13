"""Deployment: speed/memory benchmarks, ONNX export of the whole inference graph, portable bundles.

- each method's own part lives in its package (``MethodSpec``): ``random_model`` (fitted-shaped
  detectors with random weights and neutral statistics: the benchmark needs no workspace, timings
  do not depend on weight values), ``bench`` (its stages) and ``export`` (its bundle parts).
- ``references``: EfficientAD-S/M and a PatchCore-style kNN built from their published layer shapes.
- ``timing``: repeated timing with warm-up (median, spread) and peak memory.
- ``bench``: the ``bench`` command's measurements, table and JSON.
- ``graph``: one ``nn.Module`` computing image score, fused map and branch maps of an AeCSAD/CSAD
  detector with every statistic baked in; what the ONNX export traces.
- ``onnx_export``: export that graph and run it with ONNX Runtime.
- ``bundle``: one-file model bundles (safetensors + JSON + sha256 manifest) and their predictor.
"""
