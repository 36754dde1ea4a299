"""Bootstrap intervals: exact cases by hand, the exact bootstrap distribution of a 0/1 mean, and scipy."""
import numpy as np
import pytest
import torch
from scipy import stats

from course_utils.metrics import Interval, bootstrap_interval


def test_constant_scores_give_a_point_interval():
    assert bootstrap_interval(torch.full((30,), 2.5)) == Interval(2.5, 2.5, 2.5)


def test_same_seed_same_interval_and_the_mean_is_the_sample_mean():
    values = torch.randn(50, generator=torch.Generator().manual_seed(1))
    first = bootstrap_interval(values, seed=3)
    assert first == bootstrap_interval(values.numpy(), seed=3) == bootstrap_interval(values.tolist(), seed=3)
    assert first != bootstrap_interval(values, seed=4)
    assert first.mean == pytest.approx(values.double().mean().item())
    assert first.low < first.mean < first.high


def test_increase_percent_matches_the_exact_binomial_bootstrap():
    # 24 of 48 tiles increased: a resampled Increase % is 100 · Binomial(48, 0.5) / 48 exactly.
    values = 100.0 * (torch.arange(48) % 2).double()
    interval = bootstrap_interval(values, n_resamples=20000)
    step = 100 / 48
    assert interval.low == pytest.approx(100 * stats.binom.ppf(0.025, 48, 0.5) / 48, abs=step)
    assert interval.high == pytest.approx(100 * stats.binom.ppf(0.975, 48, 0.5) / 48, abs=step)


def test_agrees_with_scipy_percentile_bootstrap():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 10.0, size=200)
    ours = bootstrap_interval(values, confidence=0.9, n_resamples=20000)
    theirs = stats.bootstrap((values,), np.mean, confidence_level=0.9, n_resamples=20000, method="percentile",
                             random_state=1).confidence_interval
    standard_error = values.std() / np.sqrt(len(values))
    assert ours.low == pytest.approx(theirs.low, abs=0.15 * standard_error)
    assert ours.high == pytest.approx(theirs.high, abs=0.15 * standard_error)


@pytest.mark.parametrize("values, options, message", [
    (torch.zeros(2, 3), {}, "1-D"), ([], {}, "non-empty"), ([1.0, float("nan")], {}, "NaN"),
    ([1.0, 2.0], {"confidence": 95}, "confidence"), ([1.0, 2.0], {"n_resamples": 0}, "n_resamples")])
def test_bad_input_names_the_fix(values, options, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(values, **options)
