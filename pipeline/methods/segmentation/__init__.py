"""Component segmentation network (SPEC §5 step 6, thesis §4.4 and §5.3).

- ``torch_model``: DeepLabV3+ head on a frozen backbone, label-map prediction.
- ``losses``: CE, Dice, focal, histogram matching, entropy (eq. 4.1–4.6) and the staged schedule.
- ``lsa``: Logical Synthetic Anomaly augmentation of (image, label map) pairs.
- ``augment``: flips, 90° rotations, colour jitter and noise for training.
- ``settings``: ``SegmentationSettings`` per profile.
- ``data``: ``D_L`` (with a held-out slice) and ``D_U`` read from the workspace's pseudo-labels.
- ``train``: the training loop (Adam, cosine schedule, staged losses, checkpoint every epoch, resume).
- ``checkpoint``: safetensors checkpoints with their settings, class names and history.
"""

from pipeline.methods.segmentation.augment import AugmentSettings, augment_pair
from pipeline.methods.segmentation.losses import (
    SegLossWeights, class_weights, cross_entropy_loss, dice_loss, entropy_loss, focal_loss, histogram_loss,
    label_histogram, soft_histogram, total_loss, unsupervised_active,
)
from pipeline.methods.segmentation.lsa import LsaSettings, logical_synthetic_anomaly
from pipeline.methods.segmentation.settings import DEFAULT_STAGES, SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet, labels_to_tensor, predict_labels, resize_labels

__all__ = [
    "DEFAULT_STAGES",
    "AugmentSettings",
    "LsaSettings",
    "SegLossWeights",
    "SegmentationNet",
    "SegmentationSettings",
    "augment_pair",
    "class_weights",
    "cross_entropy_loss",
    "dice_loss",
    "entropy_loss",
    "focal_loss",
    "histogram_loss",
    "label_histogram",
    "labels_to_tensor",
    "logical_synthetic_anomaly",
    "predict_labels",
    "resize_labels",
    "soft_histogram",
    "total_loss",
    "unsupervised_active",
]
