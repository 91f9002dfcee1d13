"""An AeCSAD/CSAD detector with the shapes of a fitted one, random weights and neutral statistics
(the benchmark's and the tests' stand-in for a fit: timings do not depend on weight values)."""

from __future__ import annotations

import torch

from pipeline.methods.aecsad.method import BRANCHES, MAP_BLUR_SIGMA, RETRIEVAL, LgstDetector
from pipeline.methods.fusion import Fusion, FusionSettings, TrimmedZ
from pipeline.methods.histogram.random_model import random_histogram_detector
from pipeline.methods.instant.random_model import random_instant_detector
from pipeline.methods.lgst.maps import MapNormalisation, QuantileRange
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.models.backbones import build_backbone


def random_lgst_detector(profile: str = "quick", attention: bool = True, device: torch.device | str = "cpu",
                         backbone: str = "efficientnet_lite0", seed: int = 0,
                         seg_overrides: dict | None = None, lgst_overrides: dict | None = None,
                         fusion: FusionSettings = FusionSettings()) -> LgstDetector:
    """An AeCSAD (``attention``) or CSAD detector of ``profile``'s shapes with random weights,
    its retrieval branch a memory bank of random rows (``fusion.retrieval``).

    One backbone module is shared by the segmenter, the teacher and the retrieval embedder, as in
    a loaded detector (there each builds its own copy of the same weights: same compute).
    """
    seg = SegmentationSettings.for_profile(profile, seed=seed, backbone=backbone, **(seg_overrides or {}))
    lgst = LgstSettings.for_profile(profile, attention=attention, seed=seed, backbone=backbone, **(lgst_overrides or {}))
    torch.manual_seed(seed)
    net_backbone = build_backbone(backbone, checkpoint=None, device=device)
    hist = random_histogram_detector(seg, net_backbone, device=device, seed=seed)
    net = LgstNet(net_backbone, lgst).to(device).eval()
    norm = MapNormalisation(QuantileRange(0.0, 1.0), QuantileRange(0.0, 1.0))
    branches = [b for b in BRANCHES if fusion.retrieval or b != RETRIEVAL]
    retrieval = None
    if fusion.retrieval:
        retrieval = random_instant_detector(profile, device, backbone=backbone, seed=seed, shared=net_backbone,
                                            image_size=lgst.image_size)
    return LgstDetector(lgst.method, hist, net, norm, Fusion({b: TrimmedZ(0.0, 1.0) for b in branches}, fusion.top_k),
                        retrieval, blur_sigma=MAP_BLUR_SIGMA)
