"""CLI subcommands of deployment: ``bench``, ``export`` and ``predict --bundle`` (see ``pipeline.deploy``)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.errors import SettingsError

EXPORT_HELP = (
    "onnx: the whole aecsad/csad inference graph (segmenter, histogram distances, teacher, students, map "
    "normalisation and fusion baked in) returning the score, the fused map and the branch maps; component "
    "COUNTS are not in it (ONNX has no connected-component operator; they never enter the score) and are "
    "computed from its label_map output in NumPy, as the bundle predictor does. bundle: one file with the "
    "weights (safetensors), settings, statistics, threshold, class names and a sha256 manifest, for "
    "`predict --bundle` (aecsad, csad, histogram, instant)."
)


def bench_command(device: str, methods: list[str] | None, out: Path | None, profile: str, repeats: int | None,
                  budget_s: float, skip_training: bool, n_train: int, threads: int | None) -> int:
    from pipeline.deploy.bench import BenchOptions, format_table, run_bench

    options = BenchOptions(device=device, methods=tuple(methods) if methods else None, profile=profile,
                           repeats=repeats, budget_s=budget_s, training=not skip_training, n_train=n_train,
                           threads=threads)
    result = run_bench(options, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(result))
    if out is not None:
        from pipeline.workspace.files import atomic_write_json

        atomic_write_json(out, result)
        print(f"wrote {out}")
    return 0


def export_command(workspace: Path, category: str, method: str, fmt: str, out: Path, device: str = "cpu",
                   check_images: list[Path] | None = None) -> int:
    if fmt == "bundle":
        from pipeline.deploy.bundle import bundle_from_workspace

        manifest = bundle_from_workspace(workspace, category, method, out, device="cpu")
        size = sum(p["bytes"] for p in manifest["parts"].values())
        print(f"wrote bundle {out} ({size / 1e6:.1f} MB): {method} on {category}; "
              f"weights sha256 {manifest['parts']['weights.safetensors']['sha256'][:16]}…")
        return 0
    if fmt != "onnx":
        raise SettingsError(f"unknown export format {fmt!r}; choose onnx or bundle")
    import torch

    from pipeline.deploy.graph import graph_inputs
    from pipeline.deploy.onnx_export import export_onnx, onnx_session, parity
    from pipeline.methods.runner import load_detector
    from pipeline.workspace import Workspace

    ws = Workspace.open(workspace, create=False)
    detector = load_detector(ws, category, method, torch.device("cpu"))
    if getattr(getattr(detector, "inner", detector), "hist", True) is None:
        raise SettingsError(f"the {method} model of {category!r} was fitted on a surface (no part classes); "
                            "ONNX export needs the part branches: export the instant detector instead")
    threshold = ws.get_threshold(category, method)
    meta = {"method": method, "category": category, "threshold": threshold,
            "class_names": {str(k): v for k, v in getattr(detector, "inner", detector).hist.class_names.items()}
            if hasattr(getattr(detector, "inner", detector), "hist") else {}}
    graph = export_onnx(detector, out, meta)
    print(f"wrote {out} (inputs {', '.join(graph.input_names)}; outputs score, anomaly_map, local, global, "
          "teacher_global, label_map, fractions, branch_scores, z_scores)")
    if check_images:
        from pipeline.data.images import load_rgb

        diffs = parity(graph, onnx_session(out), graph_inputs(graph, [load_rgb(p) for p in check_images]))
        print("ONNX Runtime vs PyTorch, largest abs difference: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return 0


def predict_bundle_command(bundle_path: Path, images: list[Path], out: Path, device: str = "auto") -> int:
    """``predict --bundle``: the same files as ``predict`` (heat maps + ``scores.jsonl``), no workspace."""
    from pipeline.commands import write_predictions
    from pipeline.deploy.bundle import load_bundle_detector, read_bundle
    from pipeline.device import resolve_device

    bundle = read_bundle(bundle_path)  # refuses a tampered bundle before anything is built from it
    detector = load_bundle_detector(bundle, resolve_device(device))
    return write_predictions(detector, images, out, bundle.threshold, tuple(bundle.display_range),
                             extra={"bundle": str(bundle_path)}, spread=bundle.score_spread)

