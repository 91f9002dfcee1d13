"""Patch histogram branch (SPEC §5 step 7): scores label maps by their class-area layout.

``scoring`` is pure NumPy on label maps (from the segmentation network or the pseudo-labels);
``spec`` and ``branches`` declare the method (light); ``method`` fits and loads it and
``export`` bundles it (these import torch).
"""
