"""ONNX export of the whole AeCSAD/CSAD inference graph (``graph.DetectorGraph``).

The model returns the image score, the fused map and every branch map (see ``graph.OUTPUTS``),
with the map normalisation, histogram statistics and fusion statistics baked in as constants.
The batch axis is dynamic. What is deliberately outside the graph (component counts, resizing)
is described in ``graph``'s docstring and in the model's metadata (``post_processing``).

Uses ``torch.onnx.export(dynamo=True)`` (needs ``onnx`` and ``onnxscript``); ONNX Runtime runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.deploy.graph import OUTPUTS, DetectorGraph
from pipeline.errors import MissingFileError, SettingsError
from pipeline.methods import METHODS, onnx_method_names
from pipeline.methods.aecsad.method import BRANCHES
from pipeline.methods.runner import load_detector
from pipeline.workspace import Workspace

OPSET = 18
POST_PROCESSING = (
    "Inputs: float32 RGB (N,3,S,S) in 0..255, resized to S beforehand (PIL bilinear for 'image', "
    "the segmenter's side; 'image_lgst', when present, is the LGST side). Component counts per class and "
    "grid cell (connected components) are not in the graph: ONNX has no connected-component operator. "
    "They do not enter the score; compute them from 'label_map' with scipy.ndimage.label "
    "(pipeline.methods.histogram.scoring.region_features) for the explanations and the histogram cell map. "
    "Maps are at the LGST grid; resize them to the image for display."
)


def _require_onnx() -> None:
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingFileError(f"ONNX export needs {', '.join(missing)}: pip install {' '.join(missing)}")


def export_onnx(detector, out: Path, metadata: dict | None = None, example_batch: int = 2) -> DetectorGraph:
    """Export ``detector`` (on the CPU, of a method with ``MethodSpec.onnx``: an ``LgstDetector``) to
    ``out``; returns the traced graph module."""
    _require_onnx()
    calibration = getattr(detector, "calibration", None)  # applied few-shot fusion weights
    detector = getattr(detector, "inner", detector)
    spec = METHODS.get(getattr(detector, "method", ""))
    if spec is None or not spec.onnx:
        raise SettingsError(f"ONNX export covers the {' and '.join(onnx_method_names())} methods (the whole LGST + "
                            f"histogram graph); got a {getattr(detector, 'method', type(detector).__name__)!r} detector")
    branches = tuple(b for b in BRANCHES if b in detector.fusion.branches)  # the graph's order
    weights = None if calibration is None else tuple(calibration.weights[calibration.branches.index(b)] for b in branches)
    graph = DetectorGraph(detector, weights).eval().cpu()
    example = tuple(torch.zeros(example_batch, 3, s, s) for s in
                    ((graph.seg_size,) if len(graph.input_names) == 1 else (graph.seg_size, graph.lgst_size)))
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {0: batch} for name in graph.input_names}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with torch.no_grad():
        program = torch.onnx.export(graph, example, dynamo=True, input_names=list(graph.input_names),
                                    output_names=list(OUTPUTS), dynamic_shapes=dynamic, opset_version=OPSET,
                                    verbose=False)
    props = {"outputs": json.dumps(list(OUTPUTS)), "branches": json.dumps(list(graph.branches)), "post_processing": POST_PROCESSING,
             "seg_size": str(graph.seg_size), "lgst_size": str(graph.lgst_size),
             **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}}
    import onnx

    proto = program.model_proto
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(proto, str(tmp))
    tmp.replace(out)
    return graph


def export_workspace_onnx(workspace: Path, category: str, method: str, out: Path) -> DetectorGraph:
    """Export the fitted ``method`` of a workspace category (``export --format onnx``), with its
    threshold and part class names as metadata; a surface model (no part classes) is refused."""
    ws = Workspace.open(workspace, create=False)
    detector = load_detector(ws, category, method, torch.device("cpu"))
    inner = getattr(detector, "inner", detector)
    if getattr(inner, "hist", True) is None:
        raise SettingsError(f"the {method} model of {category!r} was fitted on a surface (no part classes); "
                            "ONNX export needs the part branches: export the instant detector instead")
    meta = {"method": method, "category": category, "threshold": ws.get_threshold(category, method),
            "class_names": {str(k): v for k, v in inner.hist.class_names.items()} if hasattr(inner, "hist") else {}}
    return export_onnx(detector, out, meta)


def onnx_session(path: Path):
    _require_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, inputs: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    """Outputs by name of an ONNX Runtime session for the graph's input tensors."""
    names = [i.name for i in session.get_inputs()]
    values = session.run(None, {name: t.detach().cpu().numpy() for name, t in zip(names, inputs)})
    return dict(zip([o.name for o in session.get_outputs()], values))


def parity(graph: DetectorGraph, session, inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Largest absolute difference per output between PyTorch and ONNX Runtime (label map:
    the share of pixels whose label differs)."""
    with torch.no_grad():
        reference = dict(zip(OUTPUTS, graph(*inputs)))
    got = run_onnx(session, inputs)
    out = {}
    for name in OUTPUTS:
        a, b = np.asarray(got[name]), reference[name].numpy()
        out[name] = float((a != b).mean()) if name == "label_map" else float(np.abs(a.astype(np.float64) - b).max())
    return out
