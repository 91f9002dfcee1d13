"""The train-free instant detector (method name ``instant``).

``spec`` declares it (light); ``method``/``model`` fit and score, ``export`` bundles it and
``bench`` times it (these import torch)."""
