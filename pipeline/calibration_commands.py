"""CLI subcommands ``label`` (mark images good/bad) and ``calibrate`` (few-shot fusion weights)."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.registered import load_workspace_category
from pipeline.errors import NotReadyError, SettingsError
from pipeline.evaluation.calibrate import apply_calibration, calibrate_method, marked_bad_samples
from pipeline.metrics.calibration import CalibrationSettings
from pipeline.workspace import IMAGE_LABELS, Workspace


def resolve_image_keys(ws: Workspace, category: str, images: list[str]) -> list[str]:
    """Image keys (``split/kind/file``) for keys or file paths of the category's images."""
    samples = load_workspace_category(ws, category).samples
    by_key = {s.key: s.key for s in samples}
    by_path = {Path(s.path).resolve(): s.key for s in samples}
    keys, unknown = [], []
    for image in images:
        key = by_key.get(image) or by_path.get(Path(image).resolve())
        (keys if key else unknown).append(key or image)
    if unknown:
        raise SettingsError(f"not images of category {category!r}: {', '.join(unknown)} "
                         "(give a key such as test/logical/000.png or the image's path)")
    return keys


def label_command(workspace: Path, category: str, label: str | None, images: list[str]) -> int:
    """Label images (``none`` removes the label); without images, list the labelled ones."""
    ws = Workspace.open(workspace, create=False)
    if images:
        if label is None:
            raise SettingsError(f"say which label: --as {'|'.join(IMAGE_LABELS)}|none")
        for key in resolve_image_keys(ws, category, images):
            ws.set_image_label(category, key, None if label == "none" else label)
    labels = ws.image_labels(category)
    for key, value in labels.items():
        print(f"{value}\t{key}")
    print(f"{len(marked_bad_samples(ws, category))} image(s) marked bad in {category}")
    return 0


def calibrate_command(workspace: Path, category: str, method: str, device: str, min_marked: int,
                      apply: bool, revert: bool) -> int:
    """Fit fusion weights on the marked bad images and print them; ``apply``/``revert`` switch fusion."""
    if min_marked < 1:  # with none, a calibration would be fitted on good images alone
        raise SettingsError(f"--min-marked must be at least 1, got {min_marked}")
    ws = Workspace.open(workspace, create=False)
    if revert:
        threshold = apply_calibration(ws, category, method, on=False)
        print(f"equal-weight fusion restored; threshold {threshold:.4g}")
        return 0
    calibration = calibrate_method(ws, category, method, CalibrationSettings(min_marked=min_marked), device)
    print("\n".join(calibration.summary_lines()))
    if apply:
        if calibration.threshold is None:
            raise NotReadyError(calibration.reason)
        threshold = apply_calibration(ws, category, method, on=True)
        print(f"applied: {calibration.mode} weights, threshold {threshold:.4g}; stored scores re-fused "
              "(re-evaluate to see the test AUROC of both fusions side by side)")
    return 0
