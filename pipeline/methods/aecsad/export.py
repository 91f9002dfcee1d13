"""AeCSAD/CSAD in a one-file bundle (``MethodSpec.bundle``): the LGST students with the teacher's
backbone, the map normalisation and fusion statistics, the retrieval branch's memory bank, and the
part branches of the histogram method (segmenter, histogram and part-colour models)."""

from __future__ import annotations

import torch

from pipeline.methods.aecsad.method import LgstDetector
from pipeline.methods.bundle_parts import SURFACE_REFUSAL, BundleError, BundleReader, add_backbone
from pipeline.methods.fusion import Fusion
from pipeline.methods.histogram.export import add_histogram, histogram_from_bundle
from pipeline.methods.instant.export import add_instant, instant_from_bundle
from pipeline.methods.lgst.maps import MapNormalisation
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.settings import SegmentationSettings


def bundle_parts(detector: LgstDetector, seg_settings: SegmentationSettings | None = None,
                 class_names: dict[int, str] | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config, tensors)`` of an AeCSAD/CSAD detector; a surface model (no parts) is refused."""
    if detector.hist is None:
        raise BundleError(SURFACE_REFUSAL)
    tensors: dict[str, torch.Tensor] = {}
    config: dict = {}
    net = detector.net
    config.update(method=detector.method, lgst_settings=net.settings.to_dict(),
                  map_normalisation=detector.norm.to_dict(), fusion=detector.fusion.to_dict(),
                  fusion_top_k=detector.fusion.top_k, map_blur_sigma=detector.blur_sigma)
    tensors.update({f"lgst.{k}": v for k, v in net.student_state_dict().items()})
    add_backbone(tensors, config, "lgst", net.teacher.backbone)
    if detector.retrieval is not None:
        add_instant(tensors, config, "retrieval", detector.retrieval)
    add_histogram(tensors, config, detector.hist, seg_settings, class_names)
    return config, tensors


def bundle_detector(reader: BundleReader) -> LgstDetector:
    """The AeCSAD/CSAD detector of a bundle, on the reader's device."""
    config = reader.config
    hist = histogram_from_bundle(reader)
    settings = LgstSettings.from_dict(config["lgst_settings"])
    net = LgstNet(reader.backbone("lgst"), settings)
    net.load_student_state_dict(reader.prefixed("lgst."))
    net = net.to(reader.device).eval()
    retrieval = instant_from_bundle(reader, "retrieval") if "retrieval_settings" in config else None
    return LgstDetector(config["method"], hist, net, MapNormalisation.from_dict(config["map_normalisation"]),
                        Fusion.from_dict(config["fusion"], config.get("fusion_top_k", 0)), retrieval,
                        blur_sigma=float(config.get("map_blur_sigma", 0.0)))
