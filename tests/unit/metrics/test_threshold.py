import numpy as np
import pytest

from pipeline.metrics.threshold import default_flagged, summarize_threshold, threshold_for_flagged


@pytest.mark.parametrize("n", [0, 1, 2, 5, 9])
def test_threshold_flags_exactly_n_distinct_scores(n):
    scores = np.random.default_rng(n).normal(size=10)
    t = threshold_for_flagged(scores, n)
    assert int((scores > t).sum()) == n


def test_threshold_flags_all_when_asked_for_more_than_there_are():
    scores = [0.2, 0.5, 0.9]
    t = threshold_for_flagged(scores, 3)
    assert all(s > t for s in scores)
    assert threshold_for_flagged(scores, 0) == 0.9


def test_threshold_needs_scores():
    with pytest.raises(ValueError, match="no good validation scores"):
        threshold_for_flagged([], 0)


def test_summary_sentence_counts_flagged_and_missed():
    s = summarize_threshold(0.5, good_scores=[0.1, 0.6, 0.3, 0.2], bad_scores=[0.9, 0.4, 0.7, 0.5])
    assert (s.flagged_good, s.n_good, s.missed_bad, s.n_bad) == (1, 4, 2, 4)
    assert s.miss_rate == 0.5
    assert s.sentence() == "1 of 4 good validation parts would be flagged; 2 of 4 known bad parts would pass (50% missed)"
    assert summarize_threshold(0.5, [0.1]).missed_bad is None


def test_default_flags_one_in_twenty():
    assert [default_flagged(m) for m in (5, 19, 20, 40)] == [0, 0, 1, 2]
