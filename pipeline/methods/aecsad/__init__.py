"""The full methods: AeCSAD (attention global student) and its CSAD baseline (``aecsad``, ``csad``).

``spec`` declares them (light); ``method`` fits and loads them, ``export`` bundles them and
``bench`` times them (these import torch)."""
