"""How the Inspect page shows one prediction: verdict metrics, the image beside its heat map with the
colour scale, the explanation sentences and the branch-score table.

A workspace image and a checked photo are drawn by these same functions, so they read alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pipeline.evaluation.verdict import Verdict, VerdictScale
from pipeline.methods.base import Prediction
from pipeline.metrics.colour_scale import colour_bar, scale_caption
from pipeline.metrics.heatmap import REGION_COLOUR_NAME, colorize
from pipeline.models.preprocess import resize_map

THRESHOLD_HELP = "The threshold is set on the Evaluate page."
FINAL_CAPTION = "Final anomaly map over the image"


def verdict_metrics(scale: VerdictScale, score: float, note: str = "") -> Verdict | None:
    """Score, threshold and verdict (with its margin) side by side, and how sure the verdict is;
    ``note`` heads the help text (e.g. the image's ground truth). Returns the verdict."""
    c1, c2, c3 = st.columns(3)
    c1.metric("Score", f"{score:.3f}")
    c2.metric("Threshold", "not set" if scale.threshold is None else f"{scale.threshold:.3f}")
    help_text = f"{note} {THRESHOLD_HELP}".strip()
    verdict = scale.judge(score)
    if verdict is None:
        c3.metric("Verdict", "—", help=help_text)
        return None
    c3.metric("Verdict", verdict.label, delta=f"{verdict.margin:+.2f} spreads", delta_color="inverse", help=help_text)
    (st.warning if verdict.borderline else st.caption)(f"Confidence: {verdict.sentence()}.")
    return verdict


def image_and_map(base: np.ndarray, heat: np.ndarray, caption: str, display: tuple[float, float],
                  above: bool) -> None:
    """The image on the left; its final map over it on the right, with the colour scale below."""
    low, high = display
    left, right = st.columns(2)
    left.image(base, caption=caption)
    right.image(heat, caption=FINAL_CAPTION + (" (green: above the threshold)" if above else ""))
    right.image(colour_bar(low, high), caption=scale_caption(low, high), width="stretch")


def explanations(pred: Prediction) -> None:
    """The method's sentences on what deviates, most unusual first (the first five)."""
    if pred.explanations:
        st.markdown("**What deviates from the good parts** (most unusual first):\n"
                    + "\n".join(f"- {sentence}" for sentence in pred.explanations[:5]))
    if pred.regions:
        st.markdown(f"**Boxed in {REGION_COLOUR_NAME} on the map** (part counts off there):\n"
                    + "\n".join(f"- {region.name}" for region in pred.regions))


def branch_scores(pred: Prediction, key: str = "branch_scores") -> None:
    """Each branch's score and z-score, and which z-scores the fused score adds up."""
    if not pred.branch_scores:
        return
    rows = [{"branch": k, "score": round(float(v), 4)} for k, v in pred.branch_scores.items() if not k.startswith("z_")]
    z = {k[2:]: float(v) for k, v in pred.branch_scores.items() if k.startswith("z_")}
    column = "z (adds to the score)" if not pred.fused else "z"
    for row in rows:
        row[column] = round(z[row["branch"]], 3) if row["branch"] in z else None
        if pred.fused:
            row["in the score"] = (row["branch"] in pred.fused) if row["branch"] in z else None
    with st.expander("Branch scores"):
        if pred.fused:
            st.caption(f"The score is the sum of this image's {len(pred.fused)} largest branch z-scores: "
                       + ", ".join(pred.fused) + ".")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=key)


def heat_map_alone(pred: Prediction, shape: tuple[int, int], display: tuple[float, float]) -> None:
    """The final map without the image, at the image's size, in an expander."""
    with st.expander("Heat map alone"):
        st.image(colorize(resize_map(pred.anomaly_map, shape), *display),
                 caption="dark = like the good parts, bright = unlike")
