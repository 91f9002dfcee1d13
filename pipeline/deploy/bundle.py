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

``load_bundle_detector`` rebuilds the same detector classes as the workspace (``LgstDetector``,
``HistogramDetector``, ``InstantDetector``) from these parts, so its scores equal the workspace
detector's.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.evaluation.verdict import score_spread
from pipeline.methods.base import Detector
from pipeline.metrics.colour_scale import workspace_display_range

FORMAT = "pipeline-bundle-v1"
MANIFEST, CONFIG, WEIGHTS = "manifest.json", "config.json", "weights.safetensors"
PARTS = (CONFIG, WEIGHTS)
SUPPORTED = ("aecsad", "csad", "histogram", "instant")
VERSIONED = ("torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "safetensors", "pillow")


class BundleError(UserError, ValueError):
    """A bundle that cannot be used: unreadable, tampered with, or of another format."""


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
    """``(config, tensors)`` of a loaded detector. ``seg_settings``: the segmenter's
    ``SegmentationSettings`` (the network does not keep them; the workspace checkpoint does)."""
    from pipeline.methods.aecsad.method import LgstDetector
    from pipeline.methods.histogram.method import HistogramDetector
    from pipeline.methods.instant.model import InstantDetector

    tensors: dict[str, torch.Tensor] = {}
    config: dict[str, Any] = {}
    if isinstance(detector, InstantDetector):
        config.update(method="instant", backbone=detector.model.settings.backbone)
        _add_instant(tensors, config, "instant", detector)
        return config, tensors
    if getattr(detector, "hist", True) is None or type(detector).__name__ == "SurfaceDetector":
        raise BundleError("this model was fitted on a surface (no part classes); bundles and ONNX export "
                          "need the part branches: export the instant detector of this category instead")
    if isinstance(detector, LgstDetector):
        hist = detector.hist
        net = detector.net
        config.update(method=detector.method, lgst_settings=net.settings.to_dict(),
                      map_normalisation=detector.norm.to_dict(), fusion=detector.fusion.to_dict(),
                      fusion_top_k=detector.fusion.top_k, map_blur_sigma=detector.blur_sigma)
        tensors.update({f"lgst.{k}": v for k, v in net.student_state_dict().items()})
        _add_backbone(tensors, config, "lgst", net.teacher.backbone)
        if detector.retrieval is not None:
            _add_instant(tensors, config, "retrieval", detector.retrieval)
    elif isinstance(detector, HistogramDetector):
        hist = detector
        config.update(method="histogram")
    else:
        raise BundleError(f"cannot bundle a {type(detector).__name__}; supported methods: {', '.join(SUPPORTED)}")
    if seg_settings is None:
        raise BundleError("bundling a segmentation branch needs its SegmentationSettings")
    from pipeline.methods.histogram.colours import ARRAYS as COLOUR_ARRAYS
    from pipeline.methods.histogram.scoring import _ARRAYS, _SCALARS

    model = hist.model
    config.update(
        segmentation_settings=seg_settings.to_dict(), n_classes=int(hist.net.n_classes), image_size=int(hist.size),
        class_names={str(k): v for k, v in (class_names or hist.class_names).items()},
        histogram_scalars={name: getattr(model, name) for name in _SCALARS},
        histogram_z={"global": [hist.global_z.mean, hist.global_z.std], "grid": [hist.grid_z.mean, hist.grid_z.std]},
    )
    tensors.update({f"histogram.{name}": torch.from_numpy(np.ascontiguousarray(getattr(model, name), np.float64))
                    for name in _ARRAYS})
    if hist.colours is not None:  # the part-colour scorer (absent in models fitted on few images or before it)
        config["part_colours"] = {"n_classes": hist.colours.n_classes, "min_fraction": hist.colours.min_fraction,
                                  "z": [hist.colour_z.mean, hist.colour_z.std]}
        tensors.update({f"part_colours.{name}": torch.from_numpy(np.ascontiguousarray(getattr(hist.colours, name), np.float64))
                        for name in COLOUR_ARRAYS})
    tensors.update({f"seg_head.{k}": v for k, v in hist.net.head.state_dict().items()})
    _add_backbone(tensors, config, "segmentation", hist.net.backbone)
    return config, tensors


def _add_instant(tensors: dict[str, torch.Tensor], config: dict, role: str, detector) -> None:
    """An instant detector's settings, memory banks and backbone under ``role`` (``instant`` for
    the method itself, ``retrieval`` for the AeCSAD/CSAD branch)."""
    model = detector.model
    config[f"{role}_settings"] = asdict(model.settings)
    config[f"{role}_anomaly_sources"] = list(model.anomaly_sources)
    from pipeline.methods.instant.model import depth_scale, model_tensors

    config[f"{role}_deep_scale"] = depth_scale(model)
    tensors.update({f"{role}.{name}": t for name, t in model_tensors(model).items()})
    _add_backbone(tensors, config, role, detector.embedder.backbone)


def _add_backbone(tensors: dict[str, torch.Tensor], config: dict, role: str, backbone) -> None:
    """Store a backbone's weights once per distinct set: the segmenter and the teacher usually
    share the same ImageNet file, which is then written once."""
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    keys = config.setdefault("backbones", {})
    for index, stored in enumerate(config.setdefault("_stored", [])):
        if stored["name"] == backbone.info.name and all(torch.equal(tensors[f"backbone{index}.{k}"], v) for k, v in state.items()):
            keys[role] = {"name": backbone.info.name, "prefix": f"backbone{index}."}
            return
    index = len(config["_stored"])
    config["_stored"].append({"name": backbone.info.name})
    tensors.update({f"backbone{index}.{k}": v for k, v in state.items()})
    keys[role] = {"name": backbone.info.name, "prefix": f"backbone{index}."}


def write_bundle(path: Path, config: dict, tensors: dict[str, torch.Tensor], *, category: str = "",
                 threshold: float | None = None, threshold_note: str = "",
                 display_range: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Write the bundle file atomically; returns its manifest."""
    from safetensors.torch import save as save_tensors

    from pipeline.workspace.files import _unshared, atomic_write_bytes

    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config.update(category=category, threshold=threshold, threshold_note=threshold_note,
                  display_range=[float(display_range[0]), float(display_range[1])])
    ready = _unshared({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
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

    if method not in SUPPORTED:
        raise BundleError(f"method {method!r} cannot be bundled; supported: {', '.join(SUPPORTED)}")
    ws = Workspace.open(workspace, create=False)
    detector = load_detector(ws, category, method, device)
    calibration = getattr(detector, "calibration", None)  # an applied few-shot fusion travels with the model
    detector = getattr(detector, "inner", detector)
    seg_settings, class_names = None, None
    if method != "instant":
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
    if config.get("method") not in SUPPORTED:
        raise BundleError(f"{path}: unknown method {config.get('method')!r}")
    return Bundle(manifest, config, tensors)


def _backbone(bundle: Bundle, role: str, device: torch.device, cache: dict):
    from pipeline.models.backbones import build_backbone

    entry = bundle.config["backbones"][role]
    key = entry["prefix"]
    if key not in cache:
        backbone = build_backbone(entry["name"], checkpoint=None, device="cpu")
        state = {k[len(key):]: v for k, v in bundle.tensors.items() if k.startswith(key)}
        backbone.load_state_dict(state, strict=True)
        cache[key] = backbone.to(device)
    return cache[key]


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
    cache: dict = {}
    config, tensors = bundle.config, bundle.tensors
    if config["method"] == "instant":
        return _instant_detector(bundle, "instant", device, cache)
    hist = _histogram_detector(bundle, device, cache)
    if config["method"] == "histogram":
        return hist
    from pipeline.methods.aecsad.method import LgstDetector
    from pipeline.methods.fusion import Fusion
    from pipeline.methods.lgst.maps import MapNormalisation
    from pipeline.methods.lgst.settings import LgstSettings
    from pipeline.methods.lgst.torch_model import LgstNet

    settings = LgstSettings.from_dict(config["lgst_settings"])
    net = LgstNet(_backbone(bundle, "lgst", device, cache), settings)
    net.load_student_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("lgst.")})
    net = net.to(device).eval()
    retrieval = _instant_detector(bundle, "retrieval", device, cache) if "retrieval_settings" in config else None
    return LgstDetector(config["method"], hist, net, MapNormalisation.from_dict(config["map_normalisation"]),
                        Fusion.from_dict(config["fusion"], config.get("fusion_top_k", 0)), retrieval,
                        blur_sigma=float(config.get("map_blur_sigma", 0.0)))


def _instant_detector(bundle: Bundle, role: str, device: torch.device, cache: dict):
    from pipeline.methods.instant.model import InstantDetector, InstantSettings, model_from_tensors
    from pipeline.methods.instant.torch_model import PatchEmbedder

    config, tensors = bundle.config, bundle.tensors
    settings = InstantSettings.from_dict(config[f"{role}_settings"])  # older bundles: one bank, square input
    sources = config.get(f"{role}_anomaly_sources", config.get("anomaly_sources", []))  # older instant bundles
    prefix = f"{role}."
    own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    model = model_from_tensors(settings, own, tuple(sources), config.get(f"{role}_deep_scale"))
    embedder = PatchEmbedder(_backbone(bundle, role, device, cache), settings.stage_names,
                             settings.deep_stage_names).to(device)
    return InstantDetector(model, embedder, device)


def _histogram_detector(bundle: Bundle, device: torch.device, cache: dict):
    from pipeline.methods.fusion import TrimmedZ
    from pipeline.methods.histogram.colours import ARRAYS as COLOUR_ARRAYS
    from pipeline.methods.histogram.colours import ColourModel
    from pipeline.methods.histogram.method import HistogramDetector
    from pipeline.methods.histogram.scoring import _ARRAYS, HistogramModel
    from pipeline.methods.segmentation.settings import SegmentationSettings
    from pipeline.methods.segmentation.torch_model import SegmentationNet

    config, tensors = bundle.config, bundle.tensors
    settings = SegmentationSettings.from_dict(config["segmentation_settings"])
    net = SegmentationNet(_backbone(bundle, "segmentation", device, cache), int(config["n_classes"]), settings)
    net.head.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("seg_head.")})
    net = net.to(device).eval()
    model = HistogramModel(**config["histogram_scalars"], **{n: tensors[f"histogram.{n}"].numpy() for n in _ARRAYS})
    z = config["histogram_z"]
    colours, colour_z = None, None
    if config.get("part_colours"):
        raw = config["part_colours"]
        colours = ColourModel(int(raw["n_classes"]), float(raw["min_fraction"]),
                              *(tensors[f"part_colours.{n}"].numpy() for n in COLOUR_ARRAYS))
        colour_z = TrimmedZ(*map(float, raw["z"]))
    return HistogramDetector(net, model, int(config["image_size"]), {int(k): v for k, v in config["class_names"].items()},
                             TrimmedZ(*map(float, z["global"])), TrimmedZ(*map(float, z["grid"])), colours, colour_z)
