"""Fit and evaluate methods on the real dev sets (and synthetic categories); write a JSON and a Markdown table.

    .venv/bin/python scripts/build_real_sets.py --ksdd /work/data/raw/ksdd --mpdd /work/data/raw/mpdd --out /work/data/real
    .venv/bin/python -m pipeline synth --out /tmp/synth
    .venv/bin/python scripts/real_benchmark.py --real /work/data/real --synth /tmp/synth \\
        --synth-categories pin_tray bottle --workspace /tmp/ws_real --out results/real.json
    # one category folder, one method, longer LGST training; models of an earlier run with the
    # same settings are reused (the test set is scored again):
    .venv/bin/python scripts/real_benchmark.py --real /work/data/real/ksdd --methods aecsad \\
        --set lgst.steps=3000 --workspace /tmp/ws_real --out ksdd.json --skip-fitted

``--real`` takes folders of LOCO categories or single category folders; ``--synth`` one synthetic
root (all its categories unless ``--synth-categories``). Each (set, category, method) row holds
image AUROC and AUPRO per defect kind, each branch's and (synthetic data) each subtype's AUROC,
fit and evaluate seconds, train/validation/test counts. The JSON (``{"run", "rows"}``, rewritten
atomically after every row, so a killed run keeps its finished rows) also records the command,
git commit, date and machine; the Markdown (``--markdown``, default: the JSON's path with ``.md``)
has one table row per (set, category, method), then per-type and per-branch lines. ``--set
part.field=value`` goes to every method that trains that part (``fit --set``); the workspace
keys models by category name, so a name may appear only once across all the sets.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench_common import figures, lgst_length, run_info  # noqa: E402  (scripts/ is on sys.path)

from pipeline.data.discover import category_root, find_categories  # noqa: E402
from pipeline.data.registered import register_category  # noqa: E402
from pipeline.device import resolve_device  # noqa: E402
from pipeline.errors import SettingsError, UserError  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_method  # noqa: E402
from pipeline.methods import get_method  # noqa: E402
from pipeline.methods.runner import fit_method  # noqa: E402
from pipeline.methods.training_settings import parse_training_settings  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from pipeline.workspace.files import atomic_write_json, atomic_write_text  # noqa: E402

SEED, BACKBONE = 0, "auto"
"""``fit_method``'s defaults, which this script keeps (``--skip-fitted`` compares them too)."""


@dataclass(frozen=True)
class Target:
    """One category to benchmark: its set (``real`` / ``synth``), the root given, its name."""

    set: str
    data: Path
    category: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, nargs="+", default=[], help="folders of LOCO categories, or category folders")
    parser.add_argument("--synth", type=Path, help="a synthetic root (python -m pipeline synth --out ...)")
    parser.add_argument("--synth-categories", nargs="+", help="categories of --synth (default: all found there)")
    parser.add_argument("--methods", nargs="+", default=["instant", "aecsad"])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument("--markdown", type=Path, help="the Markdown table (default: --out with .md)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="PART.FIELD=VALUE",
                        help="training setting for the methods that train PART (repeatable)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-fitted", action="store_true",
                        help="reuse a model fitted in the workspace on the same data with the same settings")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if not args.real and args.synth is None:
        parser.error("give --real and/or --synth")
    if args.synth_categories and args.synth is None:
        parser.error("--synth-categories needs --synth")
    return args


def plan(real: list[Path], synth: Path | None, synth_categories: list[str] | None) -> list[Target]:
    """Every category to run, in order; ``SettingsError`` when a name comes twice."""
    targets = [Target("real", root, name) for root in real for name in (find_categories(root) or [root.name])]
    if synth is not None:
        names = synth_categories or find_categories(synth) or [synth.name]
        targets += [Target("synth", synth, name) for name in names]
    seen: dict[str, Target] = {}
    for target in targets:
        if target.category in seen:
            raise SettingsError(f"category {target.category!r} is in {seen[target.category].data} and {target.data}; "
                                "the workspace keeps one model per name: benchmark them in separate workspaces")
        seen[target.category] = target
    return targets


def method_changes(methods: list[str], changes: dict[str, dict]) -> dict[str, dict]:
    """``{method: the parts of changes it trains}``; ``SettingsError`` for a part no method trains."""
    out = {m: {p: v for p, v in changes.items() if p in get_method(m).trains} for m in methods}
    unused = sorted(set(changes) - {p for used in out.values() for p in used})
    if unused:
        raise SettingsError(f"no method of {', '.join(methods)} trains {', '.join(unused)}")
    return out


def _registered_root(ws: Workspace, category: str) -> Path | None:
    return next((Path(r.data_root) for r in ws.categories() if r.name == category), None)


def fitted_alike(ws: Workspace, category: str, method: str, profile: str, changes: dict) -> bool:
    """A model of ``method`` is recorded with this profile, seed, backbone, settings changes and
    images labelled bad (the caller checks that the category's data root is unchanged)."""
    record = ws.model_record(category, method)
    if record is None:
        return False
    got = record.settings or {}
    bad = sorted(k for k, v in ws.image_labels(category).items() if v != "good")
    wanted = {"profile": profile, "seed": SEED, "backbone": BACKBONE, "labelled_bad": bad,
              "settings_changes": json.loads(json.dumps(changes))}  # tuples as the record stores them
    return all(got.get(key, {} if key == "settings_changes" else None) == value for key, value in wanted.items())


def fit(ws: Workspace, category: str, method: str, args: argparse.Namespace, changes: dict, reuse: bool) -> dict:
    """Fit (or reuse) one model; its fit figures."""
    if reuse:
        metrics = ws.model_record(category, method).metrics or {}
        return {"reused_fit": True, "fit_seconds": metrics.get("seconds_fit"), "n_train": metrics.get("n_train"),
                "n_validation": metrics.get("n_validation"), "notes": []}
    summary = fit_method(ws, category, method, profile=args.profile, device=args.device, seed=SEED,
                         backbone=BACKBONE, settings_changes=changes)
    return {"reused_fit": False, "fit_seconds": summary.seconds, "n_train": summary.n_train,
            "n_validation": summary.n_validation, "notes": list(summary.notes)}


def run_one(ws: Workspace, target: Target, method: str, args: argparse.Namespace, changes: dict, same_data: bool) -> dict:
    """Fit and evaluate ``method`` on the (registered) category: one row."""
    reuse = args.skip_fitted and same_data and fitted_alike(ws, target.category, method, args.profile, changes)
    fitted = fit(ws, target.category, method, args, changes, reuse)
    result = evaluate_method(ws, target.category, method, device=args.device, save_maps=False)
    return {"set": target.set, "category": target.category, "method": method, "data": str(target.data),
            "settings_changes": changes, **fitted, **lgst_length(ws, target.category, method), **figures(result),
            "eval_seconds": result.seconds["evaluate"], "n_test": sum(result.n.values())}


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    """The rows as a Markdown table, then each row's per-type and per-branch AUROC lines."""
    run, m = report["run"], report["run"]["machine"]
    lines = [f"# Benchmark ({run['profile']} profile)", "",
             f"commit `{run['git_commit']}`, {run['date']}, {m['device']}, {m['nproc']} CPUs, torch {m['torch']}", "",
             "| set | category | method | train | test | AUROC struct | AUROC logic | AUROC mean | AUPRO mean "
             "| fit min | eval s |", "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in report["rows"]:
        fit_min = None if r["fit_seconds"] is None else r["fit_seconds"] / 60
        lines.append(f"| {r['set']} | {r['category']} | {r['method']} | {r['n_train']} | {r['n_test']} | "
                     f"{_f(r['auroc'].get('structural'))} | {_f(r['auroc'].get('logical'))} | "
                     f"{_f(r['auroc'].get('mean'))} | {_f(r['aupro'].get('mean'))} | "
                     f"{_f(fit_min, 2)}{' (reused)' if r['reused_fit'] else ''} | {_f(r['eval_seconds'], 0)} |")
    lines += ["", "Per defect type (image AUROC against all good test images) and per branch (mean image AUROC):", ""]
    for r in report["rows"]:
        name = f"{r['set']} / {r['category']} / {r['method']}"
        types = [f"{t} ({v['kind']}, {v['n']}) {_f(v['auroc'])}" for t, v in r["subtype_auroc"].items()]
        branches = [f"{b} {_f(v.get('mean'))}" for b, v in r["branch_auroc"].items()]
        lines += [f"- {name}, types: " + " · ".join(types)] if types else []
        lines += [f"- {name}, branches: " + " · ".join(branches)] if branches else []
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path, md: Path) -> None:
    atomic_write_json(out, report)
    atomic_write_text(md, markdown(report))


def benchmark(args: argparse.Namespace, argv: list[str]) -> dict:
    """Run every (category, method); the report, written after each row."""
    changes = method_changes(args.methods, parse_training_settings(args.assignments))  # typos stop here
    targets = plan(args.real, args.synth, args.synth_categories)
    device = resolve_device(args.device)
    md = args.markdown or args.out.with_suffix(".md")
    report = {"run": {**run_info([f"scripts/{Path(__file__).name}", *argv], device), "profile": args.profile, "methods": args.methods,
                      "settings_changes": changes, "skip_fitted": args.skip_fitted}, "rows": []}
    ws = Workspace.open(args.workspace, create=True)
    for target in targets:
        same_data = _registered_root(ws, target.category) == category_root(target.data, target.category).resolve()
        register_category(ws, target.data, target.category)
        for method in args.methods:
            row = run_one(ws, target, method, args, changes[method], same_data)
            report["rows"].append(row)
            write(report, args.out, md)
            print(target.set, target.category, method, json.dumps(row["auroc"]),
                  f"fit {_f(row['fit_seconds'], 0)} s{' (reused)' if row['reused_fit'] else ''}",
                  f"eval {row['eval_seconds']:.0f} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        benchmark(args, argv)
    except UserError as err:  # a wrong folder or setting: one line, as the CLI prints it
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
