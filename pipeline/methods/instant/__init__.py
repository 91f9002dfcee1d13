"""The train-free instant detector (method name ``instant``)."""

from pipeline.methods.instant.method import INSTANT
from pipeline.methods.instant.model import InstantDetector, InstantModel, InstantSettings

__all__ = ["INSTANT", "InstantDetector", "InstantModel", "InstantSettings"]
