"""``bench`` and ``export``: time the methods, export a fitted model (see ``pipeline.deploy``;
``predict --bundle`` is in ``pipeline.cli.fit``). Everything here loads torch: imported on use."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import args as shared
from pipeline.errors import SettingsError
from pipeline.methods import bench_method_names, bundle_method_names, onnx_method_names

EXPORT_HELP = (
    f"onnx: the whole {'/'.join(onnx_method_names())} inference graph (segmenter, histogram distances, teacher, students, map "
    "normalisation and fusion baked in) returning the score, the fused map and the branch maps; component "
    "COUNTS are not in it (ONNX has no connected-component operator; they never enter the score) and are "
    "computed from its label_map output in NumPy, as the bundle predictor does. bundle: one file with the "
    "weights (safetensors), settings, statistics, threshold, class names and a sha256 manifest, for "
    f"`predict --bundle` ({', '.join(bundle_method_names())})."
)


def register(sub: shared.Subcommands) -> None:
    """Add ``bench`` and ``export`` to the command parsers ``sub``."""
    p = sub.add_parser("bench", help="time every stage (batch 1 latency, batch 8 throughput, memory, training "
                       f"step) of {', '.join(bench_method_names()[:-1])} and {bench_method_names()[-1]} beside EfficientAD-S/M and PatchCore; no workspace needed")
    shared.add_device(p)
    p.add_argument("--methods", nargs="+", help=f"any of {' '.join(bench_method_names())} efficientad_s efficientad_m patchcore "
                   "(default: all; the ratios need aecsad, efficientad_m and patchcore)")
    shared.add_profile(p, "network widths to time: quick (the CPU profile's narrow students) or paper (thesis widths)")
    p.add_argument("--out", type=Path, help="JSON file to write")
    p.add_argument("--repeats", type=int, help="timed runs per figure (default: as many as --budget-s allows, 1 to 7)")
    p.add_argument("--budget-s", type=float, default=3.0, help="seconds of timed runs per figure (default: 3)")
    p.add_argument("--skip-training", action="store_true", help="leave out the training-step timings")
    p.add_argument("--train-images", type=int, default=200, help="training images the memory banks are sized for")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.set_defaults(handler=bench)

    p = sub.add_parser("export", help="export a fitted model: ONNX graph with maps, or a one-file bundle",
                       description=EXPORT_HELP)
    shared.add_workspace(p, shared.EXISTING_WORKSPACE)
    shared.add_category(p, "a category fitted in it")
    shared.add_method(p, "aecsad", f"fitted method (default: aecsad; onnx: {' or '.join(onnx_method_names())})")
    p.add_argument("--format", choices=("onnx", "bundle"), default="onnx", help=EXPORT_HELP)
    p.add_argument("--out", type=Path, required=True, help="file to write (.onnx or .bundle)")
    p.add_argument("--check", nargs="+", type=Path, metavar="IMAGE",
                   help="onnx: also run these images through ONNX Runtime and PyTorch and print the differences")
    p.set_defaults(handler=export)


def bench(args: argparse.Namespace) -> int:
    """Time the methods and references, print the table, write the JSON with ``--out``."""
    from pipeline.deploy.bench import BenchOptions, format_table, run_bench

    options = BenchOptions(device=args.device, methods=tuple(args.methods) if args.methods else None,
                           profile=args.profile, repeats=args.repeats, budget_s=args.budget_s,
                           training=not args.skip_training, n_train=args.train_images, threads=args.threads)
    result = run_bench(options, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(result))
    if args.out is not None:
        from pipeline.workspace.files import atomic_write_json

        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0


def export(args: argparse.Namespace) -> int:
    """Write the bundle or the ONNX graph (``--check``: and compare ONNX Runtime with PyTorch)."""
    if args.format == "bundle":
        return _export_bundle(args)
    if args.format != "onnx":
        raise SettingsError(f"unknown export format {args.format!r}; choose onnx or bundle")
    from pipeline.deploy.onnx_export import export_workspace_onnx

    graph = export_workspace_onnx(args.workspace, args.category, args.method, args.out)
    print(f"wrote {args.out} (inputs {', '.join(graph.input_names)}; outputs score, anomaly_map, local, global, "
          "teacher_global, label_map, fractions, branch_scores, z_scores)")
    if args.check:
        from pipeline.data.images import load_rgb
        from pipeline.deploy.graph import graph_inputs
        from pipeline.deploy.onnx_export import onnx_session, parity

        diffs = parity(graph, onnx_session(args.out), graph_inputs(graph, [load_rgb(p) for p in args.check]))
        print("ONNX Runtime vs PyTorch, largest abs difference: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return 0


def _export_bundle(args: argparse.Namespace) -> int:
    from pipeline.deploy.bundle import bundle_from_workspace

    manifest = bundle_from_workspace(args.workspace, args.category, args.method, args.out, device="cpu")
    size = sum(p["bytes"] for p in manifest["parts"].values())
    print(f"wrote bundle {args.out} ({size / 1e6:.1f} MB): {args.method} on {args.category}; "
          f"weights sha256 {manifest['parts']['weights.safetensors']['sha256'][:16]}…")
    return 0
