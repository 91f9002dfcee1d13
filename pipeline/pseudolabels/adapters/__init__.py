"""Foundation-model adapters (RAM++, GroundingDINO, SAM) and their offline fallbacks, each behind
one small interface from ``base``."""
