"""The histogram method in a one-file bundle (``MethodSpec.bundle``): the segmenter (head and
backbone), the histogram and part-colour models' arrays (float64) and their z statistics; also
the part branches of AeCSAD/CSAD."""

from __future__ import annotations

import torch

from pipeline.methods.bundle_parts import SURFACE_REFUSAL, BundleError, BundleReader, add_backbone, float64_tensors
from pipeline.methods.fusion import TrimmedZ
from pipeline.methods.histogram.colours import ARRAYS as COLOUR_ARRAYS
from pipeline.methods.histogram.colours import ColourModel
from pipeline.methods.histogram.method import HistogramDetector
from pipeline.methods.histogram.scoring import MODEL_ARRAYS, MODEL_SCALARS, HistogramModel
from pipeline.methods.histogram.surface import SurfaceDetector
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet


def add_histogram(tensors: dict[str, torch.Tensor], config: dict, hist: HistogramDetector,
                  seg_settings: SegmentationSettings | None, class_names: dict[int, str] | None) -> None:
    """The segmenter and the histogram/part-colour models of ``hist``. ``seg_settings``: the
    segmenter's settings (the network does not keep them; the workspace checkpoint does)."""
    if seg_settings is None:
        raise BundleError("bundling a segmentation branch needs its SegmentationSettings")
    model = hist.model
    config.update(
        segmentation_settings=seg_settings.to_dict(), n_classes=int(hist.net.n_classes), image_size=int(hist.size),
        class_names={str(k): v for k, v in (class_names or hist.class_names).items()},
        histogram_scalars={name: getattr(model, name) for name in MODEL_SCALARS},
        histogram_z={"global": [hist.global_z.mean, hist.global_z.std], "grid": [hist.grid_z.mean, hist.grid_z.std]},
    )
    tensors.update(float64_tensors(model, MODEL_ARRAYS, "histogram."))
    if hist.colours is not None:  # the part-colour scorer (absent in models fitted on few images or before it)
        config["part_colours"] = {"n_classes": hist.colours.n_classes, "min_fraction": hist.colours.min_fraction,
                                  "z": [hist.colour_z.mean, hist.colour_z.std]}
        tensors.update(float64_tensors(hist.colours, COLOUR_ARRAYS, "part_colours."))
    tensors.update({f"seg_head.{k}": v for k, v in hist.net.head.state_dict().items()})
    add_backbone(tensors, config, "segmentation", hist.net.backbone)


def histogram_from_bundle(reader: BundleReader) -> HistogramDetector:
    """The histogram detector of a bundle's part branches, on the reader's device."""
    config, tensors = reader.config, reader.tensors
    settings = SegmentationSettings.from_dict(config["segmentation_settings"])
    net = SegmentationNet(reader.backbone("segmentation"), int(config["n_classes"]), settings)
    net.head.load_state_dict(reader.prefixed("seg_head."))
    net = net.to(reader.device).eval()
    model = HistogramModel(**config["histogram_scalars"], **{n: tensors[f"histogram.{n}"].numpy() for n in MODEL_ARRAYS})
    z = config["histogram_z"]
    colours, colour_z = None, None
    if config.get("part_colours"):
        raw = config["part_colours"]
        colours = ColourModel(int(raw["n_classes"]), float(raw["min_fraction"]),
                              *(tensors[f"part_colours.{n}"].numpy() for n in COLOUR_ARRAYS))
        colour_z = TrimmedZ(*map(float, raw["z"]))
    return HistogramDetector(net, model, int(config["image_size"]), {int(k): v for k, v in config["class_names"].items()},
                             TrimmedZ(*map(float, z["global"])), TrimmedZ(*map(float, z["grid"])), colours, colour_z)


def bundle_parts(detector: HistogramDetector | SurfaceDetector, seg_settings: SegmentationSettings | None = None,
                 class_names: dict[int, str] | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config, tensors)`` of the histogram method; a surface model (no parts) is refused."""
    if isinstance(detector, SurfaceDetector):
        raise BundleError(SURFACE_REFUSAL)
    tensors: dict[str, torch.Tensor] = {}
    config: dict = {"method": "histogram"}
    add_histogram(tensors, config, detector, seg_settings, class_names)
    return config, tensors


def bundle_detector(reader: BundleReader) -> HistogramDetector:
    return histogram_from_bundle(reader)
