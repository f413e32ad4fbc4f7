"""Parallel decoding of continuous tokens: known tokens stay, counts follow
the schedule, the density order reveals the likeliest first."""

import dataclasses

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.decoding import continuous_decode
from maskgit_jax.decoding import reveal_policies

L, C = 8, 3


@dataclasses.dataclass(frozen=True)
class Predict:
  """``z = (unknown tokens of the row, position)`` at every position."""

  def __call__(self, params, x, unknown, labels):
    del params, x, labels
    count = jnp.broadcast_to(jnp.sum(unknown, -1, keepdims=True),
                             unknown.shape).astype(jnp.float32)
    position = jnp.broadcast_to(jnp.arange(L, dtype=jnp.float32),
                                unknown.shape)
    return jnp.stack([count, position], -1)


@dataclasses.dataclass(frozen=True)
class Draw:
  """Candidates ``100 + position + 1000 * count`` (the step shows in the
  value); the log-density ``params[position]``. It may be given any subset
  of the positions (the random order draws only the revealed ones)."""

  def __call__(self, params, rng, z):
    del rng
    value = 100.0 + z[..., 1] + 1000.0 * z[..., 0]
    return (jnp.broadcast_to(value[..., None], z.shape[:2] + (C,)),
            params[z[..., 1].astype(jnp.int32)])


def _decode(unknown, order="random", num_iter=4, schedule="cosine",
            density=None, seed=0):
  x = jnp.asarray(np.random.default_rng(seed).normal(size=(len(unknown), L,
                                                           C)), jnp.float32)
  density = jnp.zeros(L) if density is None else jnp.asarray(density)
  out, counts = continuous_decode.decode(
      density, x, jnp.asarray(unknown), jnp.zeros(len(unknown), jnp.int32),
      jax.random.PRNGKey(seed), predict=Predict(), draw=Draw(),
      num_iter=num_iter, schedule=schedule, order=order)
  return np.asarray(x), np.asarray(out), np.asarray(counts)


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(seed=st.integers(0, 1000),
                  num_iter=st.sampled_from([1, 2, 4, 8]),
                  order=st.sampled_from(continuous_decode.ORDERS))
def test_known_tokens_stay_and_counts_follow_the_schedule(seed, num_iter,
                                                          order):
  rng = np.random.default_rng(seed)
  unknown = rng.random((3, L)) < 0.7
  # Distinct densities: tied scores at the cut-off are revealed together.
  x, out, counts = _decode(unknown, order, num_iter, seed=seed,
                           density=rng.permutation(L).astype(np.float32))
  np.testing.assert_array_equal(out[~unknown], x[~unknown])
  assert (out[unknown] >= 100).all()  # every unknown token was drawn
  assert (counts[-1] == 0).all()
  n0 = unknown.sum(-1)
  prev = n0
  for t in range(num_iter - 1):
    want = np.asarray(reveal_policies.num_to_mask(
        jnp.asarray(n0, jnp.float32), jnp.asarray(prev), (t + 1) / num_iter,
        "cosine"))[:, 0]
    want = np.where(prev > 0, want, 0)
    np.testing.assert_array_equal(counts[t], np.minimum(want, prev))
    prev = counts[t]


def test_the_density_order_reveals_the_likeliest_first():
  density = np.array([0.0, 5.0, 1.0, 7.0, 2.0, 6.0, 3.0, 4.0])
  _, out, _ = _decode(np.ones((1, L), bool), "density", num_iter=L,
                      schedule="linear", density=density)
  unknown_at_reveal = (out[0, :, 0] - 100 - np.arange(L)) / 1000
  # One token a step: the likeliest was drawn with all 8 still unknown.
  np.testing.assert_array_equal(unknown_at_reveal,
                                L - np.argsort(np.argsort(-density)))


def test_bad_orders_and_schedules_are_named():
  with pytest.raises(ValueError, match="order 'raster'"):
    _decode(np.ones((1, L), bool), "raster")
  with pytest.raises(ValueError, match="unknown mask schedule 'zigzag'"):
    _decode(np.ones((1, L), bool), schedule="zigzag")


@pytest.mark.parametrize("schedule", ["cosine", "linear", "pow3"])
@pytest.mark.parametrize("num_iter", [1, 3, 8, 16])
def test_the_random_orders_draw_bound_is_the_most_any_iteration_reveals(
    schedule, num_iter):
  length = 16
  most = continuous_decode.max_revealed(length, num_iter, schedule)
  seen = 0
  for n0 in range(1, length + 1):  # every count a row may start with
    still = n0
    for t in range(num_iter):
      keep = 0 if t == num_iter - 1 else int(np.asarray(
          reveal_policies.num_to_mask(jnp.asarray([n0], jnp.float32),
                                      jnp.asarray([still]),
                                      (t + 1) / num_iter, schedule))[0, 0])
      keep = min(keep, still)
      seen = max(seen, still - keep)
      still = keep
  assert most == max(seen, 1)
