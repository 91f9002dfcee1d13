"""The full methods: AeCSAD (attention global student) and its CSAD baseline (``aecsad``, ``csad``)."""

from pipeline.methods.aecsad.method import AECSAD, AECSAD_RETRIEVAL, CSAD, LgstDetector

__all__ = ["AECSAD", "AECSAD_RETRIEVAL", "CSAD", "LgstDetector"]
