"""GIVT's per-token Gaussian mixture: its log-density against float64 and
its sampler against the mixture's moments."""

import functools

from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from maskgit_jax.objectives import gaussian_mixture as gm


def _float64_log_prob(x, logits, means, scales):
  """The same density, written independently in float64 numpy."""
  x, logits, means, scales = (np.asarray(a, np.float64)
                              for a in (x, logits, means, scales))
  log_weights = logits - special.logsumexp(logits, axis=-1, keepdims=True)
  var = scales ** 2
  log_normal = -0.5 * ((x[..., None, :] - means) ** 2 / var
                       + np.log(2 * np.pi * var))
  return special.logsumexp(log_weights + log_normal.sum(-1), axis=-1)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _split_and_log_prob(raw, x, k, d):
  logits, means, scales = gm.split(raw, k, d)
  return logits, means, scales, gm.log_prob(x, logits, means, scales)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 5),
       d=st.integers(1, 6))
def test_log_prob_matches_a_float64_computation(seed, k, d):
  rng = np.random.default_rng(seed)
  raw = rng.normal(0, 2, (3, 4, gm.num_outputs(k, d))).astype(np.float32)
  x = (rng.normal(0, 2, (3, 4, d))).astype(np.float32)
  # Jitted as a training step runs it: one program per (k, d), not one per op.
  logits, means, scales, got = _split_and_log_prob(jnp.asarray(raw),
                                                   jnp.asarray(x), k, d)
  want = _float64_log_prob(x, logits, means, scales)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_split_orders_logits_means_scales_and_refuses_a_bad_width():
  k, d = 2, 3
  raw = jnp.arange(gm.num_outputs(k, d), dtype=jnp.float32)
  logits, means, scales = gm.split(raw, k, d)
  np.testing.assert_array_equal(logits, [0, 1])
  np.testing.assert_array_equal(means, [[2, 3, 4], [8, 9, 10]])
  np.testing.assert_allclose(scales, gm.square_plus(
      jnp.array([[5, 6, 7], [11, 12, 13]], jnp.float32)))
  assert float(gm.square_plus(jnp.float32(0.0))) == 1.0
  assert bool(jnp.all(gm.square_plus(jnp.linspace(-50, 50, 11)) > 0))
  with pytest.raises(ValueError, match="needs 14 outputs per token, got 13"):
    gm.split(raw[:-1], k, d)


def test_samples_follow_the_mixture():
  """200,000 draws: the mixture's mean and variance per channel, and the
  component weights; temperature 0 gives component means."""
  logits = jnp.log(jnp.array([0.2, 0.8]))
  means = jnp.array([[-2.0, 1.0], [3.0, 0.0]])
  scales = jnp.array([[0.5, 1.0], [1.5, 0.2]])
  n = 200_000
  tile = lambda a: jnp.broadcast_to(a, (n,) + a.shape)
  draws = np.asarray(gm.sample(jax.random.PRNGKey(0), tile(logits),
                               tile(means), tile(scales)))
  w = np.array([0.2, 0.8])
  mean = (w[:, None] * np.asarray(means)).sum(0)
  second = (w[:, None] * (np.asarray(scales) ** 2
                          + np.asarray(means) ** 2)).sum(0)
  np.testing.assert_allclose(draws.mean(0), mean, atol=0.02)
  np.testing.assert_allclose(draws.var(0), second - mean ** 2, rtol=0.02)
  cold = np.asarray(gm.sample(jax.random.PRNGKey(1), tile(logits)[:1000],
                              tile(means)[:1000], tile(scales)[:1000], 0.0))
  assert {tuple(r) for r in cold.tolist()} <= {(-2.0, 1.0), (3.0, 0.0)}
