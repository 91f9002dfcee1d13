"""One function per CLI subcommand. Each returns the process exit code; errors propagate as the
typed exceptions that ``__main__`` turns into one-line messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from pipeline.data.images import ImageReadError, load_rgb
from pipeline.data.importer import import_into_workspace, plan_imports
from pipeline.data.registered import register_category
from pipeline.progress import TqdmProgress
from pipeline.data.samples import DataError
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.evaluation.verdict import BORDERLINE_SETTING, BORDERLINE_WITHIN, judge, score_spread
from pipeline.methods.runner import fit_method, load_detector
from pipeline.metrics.colour_scale import threshold_level, workspace_display_range
from pipeline.metrics.heatmap import above_level_outline, overlay
from pipeline.metrics.subtypes import weakest_first
from pipeline.workspace import Workspace
from pipeline.workspace.files import atomic_save_png, atomic_write_json, atomic_write_text


def fit_command(
    data: Path, category: str, workspace: Path, method: str, profile: str, device: str, seed: int, backbone: str = "auto",
    confidence_weighting: bool | None = None, assignments: list[str] | None = None,
) -> int:
    changes = _training_changes(method, assignments)  # a typo exits before anything is written
    ws = Workspace.open(workspace, create=True)
    register_category(ws, data, category)
    if confidence_weighting is not None:  # a category setting: the segmentation step of the fit reads it
        from pipeline.pseudolabels.confidence import set_weighting

        set_weighting(ws, category, confidence_weighting)
    progress = TqdmProgress()
    try:
        summary = fit_method(
            ws, category, method, profile=profile, device=device, seed=seed, progress=progress, backbone=backbone,
            settings_changes=changes,
        )
    finally:
        progress.close()
    print(
        f"fitted {method} on {category}: {summary.n_train} train images in {summary.seconds:.1f} s; "
        f"threshold {summary.threshold:.4g} flags {summary.flagged} of {summary.n_validation} good validation images"
    )
    for note in summary.notes:
        print(note)
    return 0


def _training_changes(method: str, assignments: list[str] | None) -> dict:
    from pipeline.methods import get_method
    from pipeline.methods.training_settings import check_training_settings, parse_training_settings

    spec = get_method(method)
    return check_training_settings(method, spec.trains, parse_training_settings(assignments or []))


def evaluate_command(data: Path, category: str, workspace: Path, method: str, out: Path, device: str) -> int:
    ws = Workspace.open(workspace, create=False)
    register_category(ws, data, category)
    progress = TqdmProgress()
    try:
        result = evaluate_method(ws, category, method, device=device, progress=progress)
    finally:
        progress.close()
    atomic_write_json(out, result.to_dict())
    auroc = result.auroc
    print(
        f"{category} / {method}: AUROC logical {_pct(auroc.get('logical'))}, structural "
        f"{_pct(auroc.get('structural'))}, mean {_pct(auroc.get('mean'))} -> {out}"
    )
    weakest = _weakest_subtypes(result.subtype_auroc)
    if weakest:
        print(f"  weakest anomaly subtypes: {weakest}")
    return 0


def _weakest_subtypes(table: dict[str, dict], count: int = 3) -> str:
    """``"bent_pin 81.0% (13 images), ..."``: the lowest-AUROC subtypes, so a miss is not hidden in a kind's mean."""
    scored = [(name, row) for name, row in weakest_first(table) if row["auroc"] is not None]
    return ", ".join(f"{name} {_pct(row['auroc'])} ({row['n']} images)" for name, row in scored[:count])


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def heatmap_names(images: list[Path]) -> dict[Path, str]:
    """A distinct file name per image: the stem, prefixed by as many parent folders as needed.

    ``test/good/000.png`` and ``test/structural_anomalies/000.png`` become ``good_000_heatmap.png``
    and ``structural_anomalies_000_heatmap.png`` instead of overwriting each other.
    """
    unique = list(dict.fromkeys(images))
    for depth in range(1, max((len(p.parts) for p in unique), default=1) + 1):
        stems = {p: "_".join(p.with_suffix("").parts[-depth:]) for p in unique}
        if len(set(stems.values())) == len(unique) or depth == len(unique[0].parts):
            break
    if len(set(stems.values())) < len(unique):  # same stem even with every folder: number them
        stems = {p: f"{i:04d}_{p.stem}" for i, p in enumerate(unique)}
    return {p: f"{stem.lstrip('_/')}_heatmap.png" for p, stem in stems.items()}


def predict_command(workspace: Path, category: str, method: str, images: list[Path], out: Path, device: str) -> int:
    """Heat-map PNG per image plus ``scores.jsonl``; unreadable images are reported and skipped."""
    ws = Workspace.open(workspace, create=False)
    detector = load_detector(ws, category, method, device)
    display = workspace_display_range(ws, category, method)
    val = [r.score for r in ws.scores(category, method, split="validation")]
    within = (ws.get_setting(BORDERLINE_SETTING, {}, category=category) or {}).get(method, BORDERLINE_WITHIN)
    return write_predictions(detector, images, out, ws.get_threshold(category, method), display,
                             spread=score_spread(val) if val else None, borderline_within=within)


def write_predictions(detector, images: list[Path], out: Path, threshold: float | None,
                      display: tuple[float, float], extra: dict | None = None, spread: float | None = None,
                      borderline_within: float = BORDERLINE_WITHIN) -> int:
    """Score ``images`` one by one: a heat-map PNG each and one ``scores.jsonl`` row each (score,
    threshold, verdict, its margin in good-score ``spread``s and whether it is borderline, branch
    scores, explanations, plus ``extra``); exit code 1 if any image could not be read (those are
    reported and skipped), else 0."""
    low, high = display
    lines, failures = [], 0
    names = heatmap_names(images)
    for path in tqdm(images, desc="predict", file=sys.stderr, leave=False):
        try:
            rgb = load_rgb(path)
        except ImageReadError as err:
            print(f"skipped: {err}", file=sys.stderr)
            failures += 1
            continue
        pred = detector.predict([rgb])[0]
        heat_path = out / names[path]
        picture = overlay(rgb, pred.anomaly_map, low, high, 0.5)
        atomic_save_png(heat_path, above_level_outline(picture, pred.anomaly_map, threshold_level(low, high)))
        row = {
            "image": str(path), "score": pred.score, "threshold": threshold,
            "verdict": None if threshold is None else ("anomalous" if pred.score > threshold else "good"),
            "heatmap": str(heat_path), **(extra or {}),
        }
        if threshold is not None and spread:
            row.update(judge(pred.score, threshold, spread, borderline_within).to_dict())
        if pred.branch_scores:  # e.g. the histogram method's global and grid distances
            row["branch_scores"] = {k: float(v) for k, v in pred.branch_scores.items()}
        if pred.explanations:
            row["explanations"] = list(pred.explanations)
        lines.append(json.dumps(row))
        print(lines[-1])
    atomic_write_text(out / "scores.jsonl", "".join(line + "\n" for line in lines))
    if failures:
        print(f"error: {failures} of {len(images)} images could not be read", file=sys.stderr)
        return 1
    return 0


def synth_command(out: Path, categories: list[str] | None, seed: int, n_train: int | None, n_test: int | None, size: int) -> int:
    """Write synthetic LOCO-layout categories; counts left ``None`` keep the generator's defaults."""
    from pipeline.data.synth import CATEGORIES, SynthSettings, generate

    counts: dict[str, int] = {}
    if n_train is not None:
        counts.update(n_train=n_train, n_validation=max(2, n_train // 3))
    if n_test is not None:
        counts.update(n_test_good=n_test, n_logical=n_test, n_structural=n_test)
    settings = SynthSettings(out=out, categories=tuple(categories or CATEGORIES), seed=seed, size=size, **counts)
    progress = TqdmProgress()
    try:
        roots = generate(settings, progress)
    finally:
        progress.close()
    for root in roots:
        print(f"wrote {root}")
    return 0


def demo_command(root: Path) -> int:
    from pipeline.demo import prepare_demo

    progress = TqdmProgress()
    try:
        workspace, generated = prepare_demo(root, progress=progress)
    finally:
        progress.close()
    made = f"generated {', '.join(generated)}" if generated else "demo data already present"
    print(f"{made}; workspace {workspace.path}")
    return 0


def doctor_command() -> int:
    from pipeline.doctor import collect_report, format_report

    print(format_report(collect_report()))
    return 0


def import_command(
    workspace: Path, data: Path, categories: list[str] | None, category: str | None = None, layout: str = "auto"
) -> int:
    """Plan the import (printed), then register: LOCO / plain folders in place, others converted."""
    found = plan_imports(data, layout, category, categories or ())
    if found.errors:  # nothing is registered when part of the request cannot be
        raise DataError(" ".join(found.errors))
    ws = Workspace.open(workspace, create=True)
    for plan in found.plans:
        print(plan.summary())
        import_into_workspace(ws, plan)
        print(f"registered {plan.name}")
    return 0


# --- background jobs -----------------------------------------------------------------------

def jobs_start_command(
    workspace: Path, category: str, method: str, profile: str, device: str, seed: int, backbone: str,
    data: Path | None = None, assignments: list[str] | None = None,
) -> int:
    """Start a fit job in the background; prints its id alone on stdout (for scripts)."""
    from pipeline.jobs import launch_fit_job
    from pipeline.methods.training_settings import parse_training_settings

    changes = parse_training_settings(assignments or [])  # a typo exits first; launch checks the method
    ws = Workspace.open(workspace, create=data is not None)
    if data is not None:
        register_category(ws, data, category)
    job_id = launch_fit_job(ws, category, method, profile=profile, device=device, seed=seed, backbone=backbone,
                            settings_changes=changes)
    print(job_id)
    print(f"started job {job_id} (fit {method} on {category}); follow it with "
          f"`python -m pipeline jobs show --workspace {ws.path} --job {job_id}`", file=sys.stderr)
    return 0


def jobs_list_command(workspace: Path, limit: int = 20) -> int:
    from pipeline.jobs import list_jobs

    jobs = list_jobs(Workspace.open(workspace), limit)
    if not jobs:
        print("no jobs in this workspace")
    for job in jobs:
        print(f"{job.id:>4}  {job.status:<9}  {job.kind} {job.method} on {job.category}  {_position(job)}  "
              f"(updated {job.updated_at[:19].replace('T', ' ')})")
    return 0


def jobs_show_command(workspace: Path, job_id: int, log_lines: int = 20) -> int:
    from pipeline.jobs import current_job, job_log

    ws = Workspace.open(workspace)
    job = current_job(ws, job_id)
    for line in describe_job(job):
        print(line)
    log = job_log(ws, job_id, log_lines)
    if log:
        print(f"log (last {log_lines} lines):")
        print("\n".join("  " + line for line in log.splitlines()))
    return 0


def jobs_cancel_command(workspace: Path, job_id: int) -> int:
    from pipeline.jobs import cancel_job

    job = cancel_job(Workspace.open(workspace), job_id)
    print(f"job {job_id}: {job.status}" + (f" ({job.message})" if job.message else ""))
    return 0


def jobs_resume_command(workspace: Path, job_id: int) -> int:
    """Relaunch a failed/cancelled job; prints the new job's id alone on stdout."""
    from pipeline.jobs import resume_job

    new_id = resume_job(Workspace.open(workspace), job_id)
    print(new_id)
    print(f"job {job_id} resumed as job {new_id}", file=sys.stderr)
    return 0


def format_seconds(seconds: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12 s"``; "unknown" for None."""
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _position(job) -> str:
    if not job.stage:
        return "-"
    step = f" {job.step}/{job.total}" if job.total else (f" {job.step}" if job.step else "")
    eta = job.metrics.get("eta_s")
    return f"{job.stage}{step}" + (f", ETA {format_seconds(eta)}" if job.status == "running" and eta is not None else "")


def describe_job(job) -> list[str]:
    """Human lines for ``jobs show``: status, position and ETA, parameters, the last losses."""
    lines = [f"job {job.id}: {job.kind} {job.method} on {job.category}: {job.status}"
             + (" (cancel requested)" if job.status == "running" and job.metrics.get("cancel_requested") else "")]
    lines.append(f"  stage: {_position(job)}")
    if job.status == "running":
        lines.append(f"  ETA of this stage: {format_seconds(job.metrics.get('eta_s'))}")
    lines.append("  params: " + ", ".join(f"{k} {v}" for k, v in job.params.items()))
    lines.append(f"  pid {job.pid}; started {job.started_at[:19].replace('T', ' ')}; "
                 f"updated {job.updated_at[:19].replace('T', ' ')} (UTC)")
    if job.message:
        lines.append(f"  message: {job.message}")
    from pipeline.jobs.tracker import format_record

    losses = job.metrics.get("losses", [])
    if losses:
        lines.append(f"  last metrics ({min(len(losses), 5)} of {len(losses)}):")
    lines.extend("    " + format_record(record) for record in losses[-5:])
    return lines
