"""Pseudo-labels without annotation (SPEC §5 steps 1-5): tags → boxes/masks → components →
features → clusters → dense label maps → reliable/unreliable split. Never imports streamlit."""
