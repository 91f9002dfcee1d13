"""What the command line used to compute itself and now calls (shared with the pages): verdict
scales, heat-map names, job descriptions, the weakest subtypes, tag samples, rank-0 logging."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from pipeline.data.samples import Sample
from pipeline.distributed import DistributedContext, describe_processes, main_rank_only
from pipeline.evaluation.predictions import heatmap_names
from pipeline.evaluation.verdict import (
    BORDERLINE_SETTING, BORDERLINE_WITHIN, VerdictScale, borderline_within, judge, verdict_scale,
)
from pipeline.jobs.describe import describe_job, format_seconds, job_line, position
from pipeline.metrics.subtypes import percent, weakest_summary
from pipeline.pseudolabels.tag_curation import SUGGESTION_IMAGES, suggestion_samples
from pipeline.workspace.jobs import JobRecord


@dataclass
class _Row:
    score: float


class _Workspace:
    """The three reads ``verdict_scale`` makes."""

    def __init__(self, threshold: float | None, validation: list[float], bands: dict | None = None) -> None:
        self.threshold, self.validation, self.bands = threshold, validation, bands

    def get_threshold(self, category: str, method: str) -> float | None:
        return self.threshold

    def scores(self, category: str, method: str, split: str) -> list[_Row]:
        assert split == "validation"
        return [_Row(s) for s in self.validation]

    def get_setting(self, name: str, default, category: str):
        assert name == BORDERLINE_SETTING
        return default if self.bands is None else self.bands


def test_verdict_scale_judges_like_judge_with_the_stored_band() -> None:
    ws = _Workspace(1.0, [0.1, 0.2, 0.3, 0.4, 0.5], {"instant": 2})
    scale = verdict_scale(ws, "c", "instant")
    assert scale.within == 2.0 and isinstance(scale.within, float)
    assert scale.judge(1.3) == judge(1.3, 1.0, scale.spread, 2.0)
    assert borderline_within(ws, "c", "other") == BORDERLINE_WITHIN


@pytest.mark.parametrize(("threshold", "validation"), [(None, [0.1, 0.2]), (1.0, [])])
def test_no_verdict_without_a_threshold_or_good_scores(threshold, validation) -> None:
    assert verdict_scale(_Workspace(threshold, validation), "c", "m").judge(2.0) is None


def test_a_bundle_scale_uses_the_default_band() -> None:
    assert VerdictScale(1.0, 0.5).judge(1.1) == judge(1.1, 1.0, 0.5, BORDERLINE_WITHIN)


def test_heatmap_names_are_distinct_with_as_few_folders_as_needed() -> None:
    a, b, c = Path("test/good/000.png"), Path("test/structural/000.png"), Path("x/001.png")
    assert heatmap_names([a, b, c]) == {a: "good_000_heatmap.png", b: "structural_000_heatmap.png",
                                        c: "x_001_heatmap.png"}  # one depth for all
    assert heatmap_names([a, a]) == {a: "000_heatmap.png"}


def _job(**changes) -> JobRecord:
    fields = dict(id=7, kind="fit", category="bottle", method="instant", status="running", stage="train lgst",
                  step=120, total=500, message="", params={"profile": "quick"}, metrics={"eta_s": 185.0}, pid=42,
                  started_at="2024-01-02T03:04:05.678", updated_at="2024-01-02T03:05:06.789")
    fields.update(changes)
    return JobRecord(**fields)


def test_job_descriptions() -> None:
    assert [format_seconds(s) for s in (None, 12, 185, 3725)] == ["unknown", "12 s", "3 min 05 s", "1 h 02 min"]
    assert position(_job()) == "train lgst 120/500, ETA 3 min 05 s"
    assert position(_job(status="done")) == "train lgst 120/500" and position(_job(stage="")) == "-"
    assert job_line(_job()) == ("   7  running    fit instant on bottle  train lgst 120/500, ETA 3 min 05 s  "
                                "(updated 2024-01-02 03:05:06)")
    lines = describe_job(_job(metrics={"eta_s": 12, "losses": [{"stage": "s", "step": i, "loss": 1.0} for i in range(7)]}))
    assert lines[0] == "job 7: fit instant on bottle: running" and "  ETA of this stage: 12 s" in lines
    assert "  last metrics (5 of 7):" in lines and len(lines) == 11


def test_weakest_summary_skips_unscorable_subtypes() -> None:
    table = {"bent": {"auroc": 0.81, "n": 13}, "gone": {"auroc": None, "n": 1}, "cut": {"auroc": 0.95, "n": 4},
             "dent": {"auroc": 0.99, "n": 2}, "hole": {"auroc": 1.0, "n": 2}}
    assert weakest_summary(table) == "bent 81.0% (13 images), cut 95.0% (4 images), dent 99.0% (2 images)"
    assert percent(None) == "n/a"


def test_the_taggers_look_at_the_first_few_training_images() -> None:
    samples = [Sample(Path(f"/d/{i}.png"), "train", "good") for i in range(SUGGESTION_IMAGES + 2)]
    assert suggestion_samples(samples) == samples[:SUGGESTION_IMAGES]
    assert suggestion_samples(samples[:1]) == samples[:1]


def test_only_rank_0_speaks() -> None:
    heard: list[str] = []
    main_rank_only(heard.append, DistributedContext())("one")
    main_rank_only(heard.append, DistributedContext(rank=1, world_size=2, backend="gloo"))("two")
    assert heard == ["one"]
    assert describe_processes(torch.device("cpu"), DistributedContext()) == "cpu"
    assert describe_processes(torch.device("cpu"), DistributedContext(0, 2, 0, "gloo")) == \
        "cpu (rank 0 of 2 processes, gloo)"
