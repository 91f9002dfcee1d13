"""One-file model bundles: everything a line PC needs to score images, no workspace.

A bundle is a zip archive (``.bundle``) with exactly three members:

- ``weights.safetensors``: every tensor, never pickle: the frozen backbone(s) (so no weight
  registry is needed on the target), the segmenter head, the LGST students with the teacher's
  projection and statistics, the histogram model's and part-colour model's arrays (float64), the
  instant memory bank.
- ``config.json``: the method, the settings of every network, the map normalisation, the fusion
  and histogram z statistics, the threshold (with its "N of M flagged" note), the display range
  of the heat maps and the class names.
- ``manifest.json``: format, method, category, creation time, the sha256 and size of the two other
  members, and the package versions that made it.

``read_bundle`` refuses a bundle whose members are missing, extra, or differ from the manifest's
sha256 (``BundleError``, a ``ValueError``: the CLI prints one line). The manifest proves
integrity, not authorship: someone who rewrites a member *and* the manifest is not caught;
sign the file (or keep its sha256 elsewhere) where that matters.

What goes into ``config.json`` and the tensors is each method's own (``MethodSpec.bundle``, in
``pipeline/methods/<method>/export.py``); this module is the file format. ``load_bundle_detector``
rebuilds the same detector classes as the workspace from these parts, so its scores equal the
workspace detector's.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from pipeline.evaluation.verdict import score_spread
from pipeline.methods import METHODS, bundle_method_names, get_method
from pipeline.methods.base import Detector
from pipeline.methods.bundle_parts import BundleError, BundleReader
from pipeline.metrics.colour_scale import workspace_display_range

FORMAT = "pipeline-bundle-v1"
MANIFEST, CONFIG, WEIGHTS = "manifest.json", "config.json", "weights.safetensors"
PARTS = (CONFIG, WEIGHTS)
VERSIONED = ("torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "safetensors", "pillow")


@dataclass(frozen=True)
class Bundle:
    """A verified bundle's contents."""

    manifest: dict
    config: dict
    tensors: dict[str, torch.Tensor]

    @property
    def method(self) -> str:
        return str(self.config["method"])

    @property
    def threshold(self) -> float | None:
        value = self.config.get("threshold")
        return None if value is None else float(value)

    @property
    def score_spread(self) -> float | None:
        """Robust spread of the good validation scores (verdict margins), when the workspace had them."""
        value = self.config.get("score_spread")
        return None if value is None else float(value)

    @property
    def display_range(self) -> tuple[float, float]:
        low, high = self.config.get("display_range") or (0.0, 1.0)
        return float(low), float(high)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing -----------------------------------------------------------------------------------

def detector_parts(detector: Detector, seg_settings=None, class_names: dict[int, str] | None = None
                   ) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config, tensors)`` of a loaded detector, by its method's ``MethodSpec.bundle``.
    ``seg_settings``: the segmenter's ``SegmentationSettings`` (the network does not keep them;
    the workspace checkpoint does)."""
    spec = METHODS.get(getattr(detector, "method", ""))
    if spec is None or spec.bundle is None:
        raise BundleError(f"cannot bundle a {type(detector).__name__}; supported methods: {', '.join(bundle_method_names())}")
    return spec.bundle.parts(detector, seg_settings, class_names)


def write_bundle(path: Path, config: dict, tensors: dict[str, torch.Tensor], *, category: str = "",
                 threshold: float | None = None, threshold_note: str = "",
                 display_range: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Write the bundle file atomically; returns its manifest."""
    from safetensors.torch import save as save_tensors

    from pipeline.workspace.files import atomic_write_bytes, unshared_tensors

    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config.update(category=category, threshold=threshold, threshold_note=threshold_note,
                  display_range=[float(display_range[0]), float(display_range[1])])
    ready = unshared_tensors({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    parts = {CONFIG: json.dumps(config, indent=1, sort_keys=True, default=_json).encode(),
             WEIGHTS: save_tensors(ready, metadata={"format": FORMAT})}
    manifest = {
        "format": FORMAT, "method": config["method"], "category": category,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "parts": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in parts.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True), zipfile.ZIP_DEFLATED)
        archive.writestr(CONFIG, parts[CONFIG], zipfile.ZIP_DEFLATED)
        archive.writestr(WEIGHTS, parts[WEIGHTS], zipfile.ZIP_STORED)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return manifest


def _json(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def bundle_from_workspace(workspace: Path, category: str, method: str, out: Path, device: str = "cpu") -> dict:
    """Bundle the fitted ``method`` of ``category``; returns the manifest."""
    from pipeline.methods.runner import load_detector
    from pipeline.workspace import Workspace

    if method not in bundle_method_names():
        raise BundleError(f"method {method!r} cannot be bundled; supported: {', '.join(bundle_method_names())}")
    ws = Workspace.open(workspace, create=False)
    detector = load_detector(ws, category, method, device)
    calibration = getattr(detector, "calibration", None)  # an applied few-shot fusion travels with the model
    detector = getattr(detector, "inner", detector)
    seg_settings, class_names = None, None
    if get_method(method).segments:  # the segmenter's settings live in its checkpoint, not the network
        from pipeline.methods.segmentation.checkpoint import load_checkpoint
        from pipeline.methods.segmentation.train import CHECKPOINT

        checkpoint = load_checkpoint(ws.method_dir(category, method) / CHECKPOINT)
        seg_settings, class_names = checkpoint.settings, None
    config, tensors = detector_parts(detector, seg_settings, class_names)
    if calibration is not None:
        config["fusion_calibration"] = calibration.to_dict()
    val = [r.score for r in ws.scores(category, method, split="validation")]
    config["score_spread"] = score_spread(val) if val else None
    low, high = workspace_display_range(ws, category, method)
    return write_bundle(out, config, tensors, category=category, threshold=ws.get_threshold(category, method),
                        threshold_note=_threshold_note(ws, category, method), display_range=(low, high))


def _threshold_note(ws, category: str, method: str) -> str:
    from pipeline.methods.runner import FLAGGED_SETTING

    flagged = (ws.get_setting(FLAGGED_SETTING, {}, category=category) or {}).get(method)
    return "" if flagged is None else f"{flagged} good validation images flagged"


# --- reading -----------------------------------------------------------------------------------

def read_bundle(path: Path) -> Bundle:
    """Open and verify a bundle; ``BundleError`` with the reason when it cannot be trusted."""
    from safetensors.torch import load as load_tensors

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"bundle {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            members = {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise BundleError(f"{path} is not a readable model bundle ({error}); it may be damaged or tampered with") from error
    if len(names) != len(set(names)):
        raise BundleError(f"{path} was tampered with: a member appears twice")
    if MANIFEST not in members:
        raise BundleError(f"{path} is not a model bundle: it has no {MANIFEST}")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as error:
        raise BundleError(f"{path}: its manifest is not valid JSON; the bundle was damaged or tampered with") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleError(f"{path} is a bundle of format {found!r}; this version reads {FORMAT!r}")
    declared = manifest.get("parts") or {}
    extra = sorted(set(members) - set(PARTS) - {MANIFEST})
    missing = sorted(set(PARTS) - set(members))
    if extra or missing or set(declared) != set(PARTS):
        raise BundleError(f"{path} was tampered with: unexpected members {extra or 'none'}, missing {missing or 'none'}")
    for name in PARTS:
        digest = _sha256(members[name])
        if digest != declared[name].get("sha256"):
            raise BundleError(
                f"{path} was tampered with or damaged: {name} has sha256 {digest[:16]}…, the manifest says "
                f"{str(declared[name].get('sha256'))[:16]}…; refusing to load it"
            )
    try:
        config = json.loads(members[CONFIG])
        tensors = load_tensors(members[WEIGHTS])
    except Exception as error:  # a part that matches its hash but does not parse: a bad writer
        raise BundleError(f"{path}: a member does not parse ({error})") from error
    if config.get("method") not in bundle_method_names():
        raise BundleError(f"{path}: unknown method {config.get('method')!r}")
    return Bundle(manifest, config, tensors)


def load_bundle_detector(bundle: Bundle, device: torch.device | str = "cpu") -> Detector:
    """The detector of a verified bundle, on ``device``, without a workspace or weight registry
    (with its few-shot fusion weights when the workspace had them applied)."""
    detector = _plain_bundle_detector(bundle, torch.device(device))
    if bundle.config.get("fusion_calibration"):
        from pipeline.methods.calibrated import CalibratedDetector
        from pipeline.metrics.calibration import FusionCalibration

        return CalibratedDetector(detector, FusionCalibration.from_dict(bundle.config["fusion_calibration"]))
    return detector


def _plain_bundle_detector(bundle: Bundle, device: torch.device) -> Detector:
    return get_method(bundle.method).bundle.detector(BundleReader(bundle.config, bundle.tensors, device))
