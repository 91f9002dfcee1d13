"""The pieces every method's bundle export shares: backbones stored once, float64 arrays as
tensors, and the reader a method rebuilds its detector from (``MethodSpec.bundle``).

The bundle file itself (zip, manifest, sha256 checks) is ``pipeline.deploy.bundle``'s; what goes
into its ``config.json`` and ``weights.safetensors`` is each method's (``<method>/export.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.errors import UserError

SURFACE_REFUSAL = ("this model was fitted on a surface (no part classes); bundles and ONNX export "
                   "need the part branches: export the instant detector of this category instead")


class BundleError(UserError, ValueError):
    """A bundle that cannot be used: unreadable, tampered with, or of another format."""


def add_backbone(tensors: dict[str, torch.Tensor], config: dict, role: str, backbone) -> None:
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


def float64_tensors(source: object, names: tuple[str, ...], prefix: str) -> dict[str, torch.Tensor]:
    """``source``'s array attributes ``names`` as float64 tensors keyed ``prefix + name``."""
    return {f"{prefix}{name}": torch.from_numpy(np.ascontiguousarray(getattr(source, name), np.float64))
            for name in names}


@dataclass
class BundleReader:
    """A verified bundle's config and tensors, with its backbones built once per stored set.

    Attributes:
        config: the bundle's ``config.json``.
        tensors: every tensor of ``weights.safetensors``.
        device: where the rebuilt detector runs.
    """

    config: dict
    tensors: dict[str, torch.Tensor]
    device: torch.device
    _built: dict = field(default_factory=dict)

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under ``prefix``, keyed without it."""
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def backbone(self, role: str):
        """The backbone stored for ``role`` (``segmentation``, ``lgst``, ``instant``, ``retrieval``),
        one module per stored set of weights, as ``add_backbone`` shared them."""
        from pipeline.models.backbones import build_backbone

        entry = self.config["backbones"][role]
        key = entry["prefix"]
        if key not in self._built:
            backbone = build_backbone(entry["name"], checkpoint=None, device="cpu")
            backbone.load_state_dict(self.prefixed(key), strict=True)
            self._built[key] = backbone.to(self.device)
        return self._built[key]
