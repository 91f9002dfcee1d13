"""The full methods: AeCSAD (attention global student) and its CSAD baseline (``aecsad``, ``csad``)."""

from pipeline.methods.aecsad.method import AECSAD, CSAD, LgstDetector

__all__ = ["AECSAD", "CSAD", "LgstDetector"]
