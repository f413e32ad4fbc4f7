"""Mask schedules, the training mask sampler and the MVTM loss."""

import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.objectives import mvtm

# Fixture key -> our schedule name.
OFFICIAL_SCHEDULES = {"uniform": "linear", "cosine": "cosine",
                      "pow2": "square", "pow0.5": "sqrt", "log": "log",
                      "exp": "exp"}


@pytest.mark.parametrize("official, ours", sorted(OFFICIAL_SCHEDULES.items()))
def test_schedules_match_official(parity, official, ours):
  ratios = parity.io["sched_ratios"]
  expected = parity.io[f"sched_{official}"]
  np.testing.assert_allclose(mvtm.schedule(ratios, 64, ours), expected,
                             rtol=0, atol=1e-6)
  np.testing.assert_allclose(mvtm.schedule(ratios, 64, official), expected,
                             rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", mvtm.SCHEDULES + ("pow1.5",))
def test_schedules_decrease_from_one_to_the_floor(method):
  r = np.linspace(0.0, 1.0, 101)
  values = np.asarray(mvtm.schedule(r, 256, method))
  assert values.min() >= mvtm.MIN_MASK_RATIO and values.max() <= 1.0
  assert np.all(np.diff(values) <= 1e-7), method
  assert values[0] >= 1.0 - 1.0 / 256 and values[-1] == pytest.approx(1e-6)


def test_named_powers():
  r = np.linspace(0.0, 1.0, 9, dtype=np.float32)
  np.testing.assert_allclose(mvtm.schedule(r, 1, "cubic"), 1 - r**3 + 0,
                             atol=1e-6)
  np.testing.assert_allclose(mvtm.schedule(r, 1, "cubic"),
                             mvtm.schedule(r, 1, "pow3"), atol=0)


def test_arccos_schedule_closed_form():
  # Halton-MaskGIT / MaskBit: gamma(r) = arccos(r) / (pi / 2).
  r = np.array([0.0, 0.5, np.sqrt(0.5), 1.0], np.float32)
  np.testing.assert_allclose(mvtm.schedule(r, 64, "arccos"),
                             [1.0, 2.0 / 3.0, 0.5, 1e-6], atol=1e-6)


@pytest.mark.parametrize("bad", ["cosin", "pow", "pow-1", "pow0", ""])
def test_unknown_schedule_is_named_in_the_error(bad):
  with pytest.raises(ValueError, match=repr(bad).replace("-", r"\-")):
    mvtm.schedule(0.5, 64, bad)


@pytest.mark.slow  # trains or compiles for several seconds
@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1),
                  length=st.integers(1, 300),
                  min_rate=st.sampled_from([0.0, 0.3]),
                  method=st.sampled_from(mvtm.SCHEDULES))
def test_sample_mask_counts_are_ceil_gamma_n(seed, length, min_rate, method):
  rng = jax.random.PRNGKey(seed)
  # Jitted as training runs it (one program per length, not one per op).
  sample = jax.jit(mvtm.sample_mask, static_argnums=(1, 2),
                   static_argnames=("method", "min_mask_rate"))
  mask = np.asarray(sample(rng, 8, length, method=method,
                           min_mask_rate=min_rate))
  assert mask.shape == (8, length) and mask.dtype == bool
  counts = mask.sum(-1)
  # Recompute the count from the same ratio draw the sampler made.
  r = jax.random.uniform(jax.random.split(rng)[0], (8,))
  expected = np.ceil(np.asarray(mvtm.schedule(r, length, method)) * length)
  expected = np.clip(expected, max(1, math.ceil(min_rate * length)), length)
  np.testing.assert_array_equal(counts, expected)


def test_sample_mask_positions_are_uniform():
  mask = np.asarray(mvtm.sample_mask(jax.random.PRNGKey(0), 4000, 16,
                                        method="linear"))
  freq = mask.mean(0)
  # Under a uniform choice every position is masked equally often; the
  # linear schedule masks ceil((1-r)N)/N ~ 0.53 of the tokens on average.
  assert np.abs(freq - freq.mean()).max() < 0.04
  assert 0.48 < freq.mean() < 0.58


def test_skewed_mask_ratios_follow_their_distributions():
  """MAR's truncated normal and eMIGM's 1 - exp(-5t): range and mean
  against closed forms (scipy's truncnorm; the integral of exp)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  n = 200_000
  mar = np.asarray(mvtm.mask_ratio(jax.random.PRNGKey(0), n, 64,
                                   distribution="mar"))
  assert 0.7 <= mar.min() and mar.max() <= 1.0
  want = stats.truncnorm(-1.2, 0.0, loc=1.0, scale=0.25)
  se = want.std() / math.sqrt(n)
  assert abs(mar.mean() - want.mean()) < 4 * se
  assert abs(np.median(mar) - want.median()) < 0.002
  emigm = np.asarray(mvtm.mask_ratio(jax.random.PRNGKey(1), n, 64,
                                     distribution="emigm"))
  assert 1 - math.exp(-1) - 1e-6 <= emigm.min() and emigm.max() < 1.0
  mean = 1 - (math.exp(-1) - math.exp(-5)) / (5 * 0.8)
  assert abs(emigm.mean() - mean) < 4 * emigm.std() / math.sqrt(n)
  mask = np.asarray(mvtm.sample_mask(jax.random.PRNGKey(2), 512, 64,
                                     distribution="mar"))
  assert mask.sum(-1).min() >= math.ceil(0.7 * 64) - 1  # float32 rounding
  with pytest.raises(ValueError, match="'beta'.*emigm"):
    mvtm.mask_ratio(jax.random.PRNGKey(0), 2, 4, distribution="beta")


def test_min_mask_rate_out_of_range():
  with pytest.raises(ValueError, match="min_mask_rate must lie in"):
    mvtm.sample_mask(jax.random.PRNGKey(0), 1, 4, min_mask_rate=1.5)


def test_weighted_loss_matches_official(parity):
  io = parity.io
  loss = mvtm.weighted_cross_entropy(
      logits=io["tf_logits"], targets=io["tf_target_ids"],
      weights=io["loss_weights"], label_smoothing=float(
          io["loss_label_smoothing"]))
  np.testing.assert_allclose(loss, io["loss_weighted_ce"], rtol=1e-5)


def test_loss_closed_form_and_weighting():
  # Uniform logits over V ids: cross-entropy is log(V) whatever the target.
  logits = jnp.zeros((2, 3, 5))
  targets = jnp.array([[0, 1, 2], [3, 4, 0]])
  for s in (0.0, 0.1):
    np.testing.assert_allclose(
        mvtm.weighted_cross_entropy(logits=logits, targets=targets,
                                       label_smoothing=s), math.log(5),
        rtol=1e-6)
  # A confident correct prediction: loss ~ 0 without smoothing; only the
  # weighted positions count, so a wrong unweighted position is ignored.
  logits = 50.0 * jax.nn.one_hot(jnp.array([[0, 1, 2]]), 5)
  weights = jnp.array([[1.0, 1.0, 0.0]])
  wrong = jnp.array([[0, 1, 4]])
  assert mvtm.weighted_cross_entropy(
      logits=logits, targets=wrong, weights=weights) < 1e-6
  assert mvtm.weighted_cross_entropy(logits=logits, targets=wrong) > 10


def test_mvtm_loss_masked_vs_all():
  rng = jax.random.PRNGKey(3)
  logits = jax.random.normal(rng, (2, 6, 9))
  targets = jax.random.randint(rng, (2, 6), 0, 9)
  mask = jnp.array([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool)
  loss, metrics = mvtm.mvtm_loss(logits=logits, targets=targets, mask=mask,
                                    label_smoothing=0.0)
  ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None],
                            -1)[..., 0]
  expected = (ce[0, 1:3].mean() + ce[1, 3:].mean()) / 2
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  loss_all, _ = mvtm.mvtm_loss(logits=logits, targets=targets, mask=mask,
                                  label_smoothing=0.0, loss_on="all")
  np.testing.assert_allclose(loss_all, ce.mean(), rtol=1e-6)
  assert metrics["masked_per_row"] == pytest.approx(2.5)
  with pytest.raises(ValueError, match="loss_on must be"):
    mvtm.mvtm_loss(logits=logits, targets=targets, mask=mask, loss_on="x")
