"""Zero-shot CLIP text-prompt scorer (method name ``zeroshot``); runs only with local CLIP weights.

``spec`` declares it (light); ``method`` fits and loads it and has the Train page's helpers
(the object word, whether it can run here); ``model``/``clip`` import torch."""
