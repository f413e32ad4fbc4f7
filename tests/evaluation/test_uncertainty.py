"""The studies' error bars against scipy's tests and by coverage."""

import math

import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest
from scipy import stats

from maskgit_jax.evaluation import uncertainty

_values = st.lists(st.floats(-100, 100, allow_nan=False), min_size=2,
                   max_size=8)


@hypothesis.given(k=st.integers(0, 1000), n=st.integers(1, 1000))
def test_binomial_is_the_wilson_interval_of_scipy(k, n):
  hypothesis.assume(k <= n)
  got = uncertainty.binomial(k / n, n)
  want = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
  assert got.low == pytest.approx(want.low, abs=1e-9)
  assert got.high == pytest.approx(want.high, abs=1e-9)
  assert got.se == pytest.approx(math.sqrt(k / n * (1 - k / n) / n))


@hypothesis.given(_values)
def test_over_seeds_is_the_t_interval(values):
  got = uncertainty.over_seeds(values)
  hypothesis.assume(np.std(values) > 1e-6)
  low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                               scale=stats.sem(values))
  assert (got.low, got.high) == pytest.approx((low, high), rel=1e-9, abs=1e-9)


@hypothesis.given(_values, _values)
def test_unpaired_difference_agrees_with_welchs_test(a, b):
  hypothesis.assume(min(np.std(a), np.std(b)) > 1e-2)
  got = uncertainty.difference(a, b, paired=False)
  p = stats.ttest_ind(a, b, equal_var=False).pvalue
  hypothesis.assume(abs(p - 0.05) > 1e-6)
  assert got.excludes(0.0) == (p < 0.05)


@hypothesis.given(st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)),
                           min_size=2, max_size=8))
def test_paired_difference_agrees_with_the_paired_t_test(pairs):
  a, b = np.array(pairs).T
  hypothesis.assume(np.std(a - b) > 1e-3)
  got = uncertainty.difference(a, b, paired=True)
  p = stats.ttest_rel(a, b).pvalue
  hypothesis.assume(abs(p - 0.05) > 1e-6)
  assert got.excludes(0.0) == (p < 0.05)
  assert got.mean == pytest.approx(np.mean(a - b))


def test_intervals_cover_the_true_mean_95_percent_of_the_time():
  rng = np.random.default_rng(0)
  trials = 4000
  covered = sum(
      not uncertainty.over_seeds(rng.normal(3.0, 2.0, 3)).excludes(3.0)
      for _ in range(trials))
  # 95% +- 3 binomial standard errors of `trials` draws.
  assert abs(covered / trials - 0.95) < 3 * math.sqrt(0.95 * 0.05 / trials)


def test_a_seed_spread_below_the_binomial_noise_is_raised_to_it():
  tight = uncertainty.accuracy_over_seeds([0.900, 0.901, 0.900], 1000)
  assert tight.se == pytest.approx(math.sqrt(0.9003 * 0.0997 / 3000),
                                   rel=1e-3)
  wide = uncertainty.accuracy_over_seeds([0.80, 0.90, 0.85], 1000)
  assert wide.se == pytest.approx(stats.sem([0.80, 0.90, 0.85]))


def test_verdicts_and_one_seed():
  better = uncertainty.difference([0.95, 0.96, 0.94], [0.80, 0.81, 0.79],
                                  paired=False)
  assert uncertainty.verdict(better, ("A", "B"), higher_is_better=True
                             ).startswith("A better")
  assert uncertainty.verdict(better, ("A", "B"), higher_is_better=False
                             ).startswith("B better")
  mixed = uncertainty.difference([1.0, 3.0], [2.0, 2.5], paired=False)
  assert "holds 0" in uncertainty.verdict(mixed, ("A", "B"),
                                          higher_is_better=True)
  one = uncertainty.over_seeds([0.5])
  assert math.isnan(one.se) and one.format() == "0.500"
  assert "one seed" in uncertainty.verdict(
      uncertainty.difference([1.0], [0.0], paired=True), ("A", "B"),
      higher_is_better=True)


@pytest.mark.parametrize("call, message", [
    (lambda: uncertainty.binomial(1.5, 10), "accuracy in"),
    (lambda: uncertainty.over_seeds([]), "finite values"),
    (lambda: uncertainty.over_seeds([1.0, float("nan")]), "finite values"),
    (lambda: uncertainty.difference([1, 2], [1], paired=True), "shared seed"),
    (lambda: uncertainty.over_seeds([1.0, 2.0], confidence=1.0), "confidence"),
])
def test_bad_inputs_are_named(call, message):
  with pytest.raises(ValueError, match=message):
    call()
