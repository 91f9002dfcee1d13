"""``doctor``: what this installation can do — device, weights found or missing, package versions.

Nothing here imports the heavy optional packages or loads any weights: versions come from the
installed distributions' metadata and weights are only looked up, so the report is instant and
cannot fail because one optional piece is broken.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass

from pipeline.device import cuda_summary, describe_device, resolve_device
from pipeline.models.weights import (
    CLIP_ARCHITECTURE_ENV, CLIP_DEFAULT_ARCHITECTURE, REGISTRY, SHARED_DIR_ENV, WeightStatus, weight_status,
)

PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "timm": ("timm",),
    "numpy": ("numpy",),
    "streamlit": ("streamlit",),
    "segment_anything": ("segment-anything", "segment_anything"),
    "groundingdino": ("groundingdino-py", "groundingdino"),
    "transformers": ("transformers",),
    "scikit-learn": ("scikit-learn",),
    "hdbscan": ("hdbscan",),
    "open_clip": ("open_clip_torch", "open-clip-torch"),
}
"""Reported packages: display name -> distribution names to try (the first installed one wins)."""

OPTIONAL_PACKAGES = ("open_clip",)
"""Packages whose absence is expected and not worth a note."""


@dataclass(frozen=True)
class DoctorReport:
    """Everything ``doctor`` prints.

    Attributes:
        device: what ``--device auto`` resolves to, described (``describe_device``).
        cuda: one line on CUDA availability, or why it is unavailable.
        models: weight status of every registry entry, in registry order.
        packages: version of each package in ``PACKAGES``, ``None`` when not installed.
        notes: advice lines (missing packages that a found model needs, settings in effect, ...).
    """

    device: str
    cuda: str
    models: tuple[WeightStatus, ...]
    packages: dict[str, str | None]
    notes: tuple[str, ...]


def collect_report(setting_paths: dict[str, str] | None = None) -> DoctorReport:
    """Inspect this installation. ``setting_paths`` maps registry keys to workspace-setting paths."""
    settings = setting_paths or {}
    models = tuple(weight_status(key, setting=settings.get(key)) for key in REGISTRY)
    packages = {name: _version(dists) for name, dists in PACKAGES.items()}
    return DoctorReport(
        device=describe_device(resolve_device("auto")),
        cuda=cuda_summary(),
        models=models,
        packages=packages,
        notes=tuple(_notes(models, packages)),
    )


def _version(distributions: tuple[str, ...]) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _importable(module: str) -> bool:
    # find_spec locates the package without running it: a broken optional package must not
    # crash the doctor that is meant to diagnose it.
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _notes(models: tuple[WeightStatus, ...], packages: dict[str, str | None]) -> list[str]:
    notes = []
    if _importable("ram"):
        notes.append("`ram` package (RAM++ tagger): importable")
    else:
        notes.append("`ram` package (RAM++ tagger): NOT importable; install it from "
                     "https://github.com/xinyu1205/recognize-anything to use RAM++ (not on PyPI)")
    for status in models:
        package = REGISTRY[status.key].package
        if status.found and package and package != "ram" and not _importable(package):
            notes.append(f"{status.key}: weights found but the `{package}` package is not importable")
    notes.extend(_clip_notes(models))
    shared = os.environ.get(SHARED_DIR_ENV)
    if shared:
        notes.append(f"{SHARED_DIR_ENV}={shared}")
    else:
        notes.append(f"{SHARED_DIR_ENV} is not set (it may name one folder holding the weight files "
                     "under their expected names)")
    missing = [name for name, version in packages.items()
               if version is None and name not in OPTIONAL_PACKAGES]
    if missing:
        notes.append(f"packages not installed: {', '.join(missing)} (see requirements.txt)")
    return notes


def _clip_notes(models: tuple[WeightStatus, ...]) -> list[str]:
    # A CLIP file does not say which architecture it is; a wrong guess only shows at load time,
    # so say which one will be assumed.
    clip = next((status for status in models if status.key == "open_clip"), None)
    if clip is None or not clip.found:
        return []
    chosen = os.environ.get(CLIP_ARCHITECTURE_ENV, "").strip()
    arch = f"{chosen} (from {CLIP_ARCHITECTURE_ENV})" if chosen else f"{CLIP_DEFAULT_ARCHITECTURE} (the default)"
    return [f"open_clip: `--method zeroshot` reads the CLIP weights as architecture {arch}; set "
            f"{CLIP_ARCHITECTURE_ENV} to the file's open_clip model name if it is another"]


def format_report(report: DoctorReport) -> str:
    """The report as plain text for a terminal: device, one block per model, packages, notes."""
    lines = ["Device", f"  auto device : {report.device}", f"  CUDA        : {report.cuda}", "", "Models"]
    for status in report.models:
        lines.extend(_model_lines(status))
    lines += ["", "Packages"]
    width = max(len(name) for name in report.packages)
    for name, version in report.packages.items():
        shown = version or ("not installed (optional)" if name in OPTIONAL_PACKAGES else "NOT INSTALLED")
        lines.append(f"  {name.ljust(width)} : {shown}")
    lines += ["", "Notes"] + [f"  - {note}" for note in report.notes]
    return "\n".join(lines)


def _model_lines(status: WeightStatus) -> list[str]:
    spec = REGISTRY[status.key]
    state = "found  " if status.found else "MISSING"
    expected = " or ".join(spec.filenames) + (" (folder)" if spec.is_folder else "")
    lines = [
        f"  [{state}] {status.key} — {spec.title}",
        f"      expects : {expected}  (env {spec.env_var})",
    ]
    if status.found:
        lines.append(f"      {status.message}")
    else:
        lines.append(f"      why     : {status.message.splitlines()[0]}")
        lines.append(f"      fix     : set {spec.env_var}=/path/to/{spec.filenames[0]} "
                     f"or put it in ${SHARED_DIR_ENV}")
        lines.append(f"      get it  : {spec.source_hint}")
        lines.append(f"      role    : {spec.purpose}")
    return lines
