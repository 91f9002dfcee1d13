"""The embedded demo: synthetic categories generated on first use, registered in a workspace, and
the instant detector fitted and evaluated on each, so Inspect and Evaluate have something to show
the moment the app opens."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from pipeline.data.synth import DEFAULT_CATEGORIES, SynthSettings, generate
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.methods.runner import fit_method
from pipeline.progress import ProgressFn, no_progress
from pipeline.workspace import Workspace

DEFAULT_DEMO_ROOT = Path("demo")
"""``make run`` keeps the demo data in ``demo/data`` and its workspace in ``demo/workspace``."""

DEMO_METHOD = "instant"
"""The detector the demo fits: train-free, seconds per category on a CPU."""

DEMO_FITTED = ("bottle", "cable_connector", "pin_tray")
"""The categories the demo fits, those the instant detector fits in seconds (the pages open on the
first by name). ``fastener_kit`` is left for the Train page: its fit takes as long as the other three
together, and its logical rules (how many screws, nuts, washers) are where AeCSAD beats it."""

DEMO_SETTING = "demo"
"""Workspace setting that marks the demo workspace (the app shows its banner there); the folder
name says nothing, a user may well call a workspace ``demo``."""

FITTED_ON_SETTING = "demo_fitted_on"
"""Per-category setting: the fingerprint of the data the demo model was fitted on, so a rerun
refits only when the images changed."""


def add_demo_data(workspace: Workspace, settings: SynthSettings, progress: ProgressFn = no_progress) -> tuple[str, ...]:
    """Generate the categories missing under ``settings.out``, register all; returns those generated."""
    missing = tuple(c for c in settings.categories if not (settings.out / c / "train" / "good").is_dir())
    if missing:
        generate(replace(settings, categories=missing), progress)
    known = {c.name for c in workspace.categories()}
    for name in settings.categories:
        if name not in known:
            workspace.add_category(name, (settings.out / name).resolve(), "loco")
    return missing


def is_demo(workspace: Workspace) -> bool:
    """Whether ``prepare_demo`` made this workspace (it writes the ``DEMO_SETTING`` marker)."""
    return bool(workspace.get_setting(DEMO_SETTING))


def data_fingerprint(root: Path) -> str:
    """A hash of every file's path, size and modification time under ``root``: cheap (no reads),
    and it changes when the generator rewrites, adds or removes an image."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _model_files_present(workspace: Workspace, category: str) -> bool:
    record = workspace.model_record(category, DEMO_METHOD)
    if record is None:
        return False
    folder = workspace.method_dir(category, DEMO_METHOD)
    return all((folder / rel).is_file() or (workspace.path / rel).is_file() for rel in record.files.values())


def needs_fit(workspace: Workspace, category: str) -> bool:
    """True when the demo model is missing, lost a file, or was fitted on other data."""
    fingerprint = data_fingerprint(workspace.category(category).data_root)
    fitted_on = workspace.get_setting(FITTED_ON_SETTING, category=category)
    return fitted_on != fingerprint or not _model_files_present(workspace, category)


def needs_evaluation(workspace: Workspace, category: str) -> bool:
    """True when the model has no test metrics (Inspect's worst-first list and Evaluate's curves need them)."""
    record = workspace.model_record(category, DEMO_METHOD)
    return record is None or "auroc" not in (record.metrics or {})


def fit_demo_models(workspace: Workspace, categories: tuple[str, ...], device: str = "auto",
                    progress: ProgressFn = no_progress) -> tuple[str, ...]:
    """Fit and evaluate the instant detector where ``needs_fit`` says so, evaluate where only the
    metrics are missing; returns the categories fitted. A model the user refitted on the same
    data is kept."""
    fitted = []
    for name in categories:
        if needs_fit(workspace, name):
            fit_method(workspace, name, DEMO_METHOD, device=device, progress=progress)
            workspace.set_setting(FITTED_ON_SETTING, data_fingerprint(workspace.category(name).data_root), category=name)
            fitted.append(name)
        if needs_evaluation(workspace, name):
            evaluate_method(workspace, name, DEMO_METHOD, device=device, progress=progress)
    return tuple(fitted)


def prepare_demo(root: Path = DEFAULT_DEMO_ROOT, progress: ProgressFn = no_progress, fit: bool = True,
                 settings: SynthSettings | None = None, device: str = "auto") -> tuple[Workspace, tuple[str, ...], tuple[str, ...]]:
    """The demo workspace under ``root``: data generated and the demo detector fitted (on the
    ``DEMO_FITTED`` categories) on first use.

    Returns the workspace, the categories generated and those fitted (both empty on a rerun that
    found everything in place). ``settings`` overrides the generator's (tests use tiny demos);
    its ``out`` is always ``root / "data"``.
    """
    workspace = Workspace.create(root / "workspace")
    # Named, not "all": a category added to the generator (textured_plate) must not lengthen the demo.
    settings = replace(settings or SynthSettings(out=root / "data", categories=DEFAULT_CATEGORIES), out=root / "data")
    generated = add_demo_data(workspace, settings, progress)
    workspace.set_setting(DEMO_SETTING, {"method": DEMO_METHOD})
    wanted = tuple(name for name in settings.categories if name in DEMO_FITTED)
    fitted = fit_demo_models(workspace, wanted, device, progress) if fit else ()
    return workspace, generated, fitted
