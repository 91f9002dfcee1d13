"""The embedded demo: synthetic categories generated on first use, registered in a workspace."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.data.synth import DEFAULT_CATEGORIES, SynthSettings, generate
from pipeline.progress import ProgressFn, no_progress
from pipeline.workspace import Workspace

DEFAULT_DEMO_ROOT = Path("demo")
"""``make run`` keeps the demo data in ``demo/data`` and its workspace in ``demo/workspace``."""


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


def prepare_demo(root: Path = DEFAULT_DEMO_ROOT, progress: ProgressFn = no_progress) -> tuple[Workspace, tuple[str, ...]]:
    """The demo workspace under ``root``, with its data generated on first use."""
    workspace = Workspace.create(root / "workspace")
    # Named, not "all": a category added to the generator (textured_plate) must not lengthen the demo.
    generated = add_demo_data(workspace, SynthSettings(out=root / "data", categories=DEFAULT_CATEGORIES), progress)
    return workspace, generated
