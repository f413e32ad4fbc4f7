"""InfoNCE (NT-Xent) between two views: against a float64 NumPy reading of
SimCLR's definition, and its invariances."""

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.objectives import contrastive


def _reference(z1, z2, temperature):
  """SimCLR's NT-Xent, written out pair by pair in float64."""
  z = np.concatenate([z1, z2]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n, b = len(z), len(z1)
  total = 0.0
  for i in range(n):
    j = (i + b) % n
    others = [k for k in range(n) if k != i]
    denom = np.sum(np.exp(z[i] @ z[others].T / temperature))
    total += -np.log(np.exp(z[i] @ z[j] / temperature) / denom)
  return total / n


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(batch=st.integers(2, 6), dim=st.integers(1, 5),
                  temperature=st.sampled_from([0.1, 0.2, 0.5, 1.0]),
                  seed=st.integers(0, 2**31 - 1))
def test_matches_simclrs_definition(batch, dim, temperature, seed):
  rng = np.random.default_rng(seed)
  z1, z2 = rng.normal(size=(2, batch, dim)).astype(np.float32) + 0.1
  # Jitted as training runs it: one program per shape, not one per op.
  loss, accuracy = jax.jit(contrastive.info_nce)(
      jnp.asarray(z1), jnp.asarray(z2), temperature)
  np.testing.assert_allclose(float(loss), _reference(z1, z2, temperature),
                             rtol=2e-4, atol=1e-4)
  assert 0.0 <= float(accuracy) <= 1.0


def test_scale_and_joint_order_do_not_matter_but_pairing_does():
  rng = np.random.default_rng(0)
  z1, z2 = rng.normal(size=(2, 8, 16)).astype(np.float32)
  base, _ = contrastive.info_nce(z1, z2, 0.2)
  order = rng.permutation(8)
  permuted, _ = contrastive.info_nce(z1[order], z2[order], 0.2)
  scaled, _ = contrastive.info_nce(3.0 * z1, 0.5 * z2, 0.2)
  np.testing.assert_allclose([float(permuted), float(scaled)],
                             [float(base)] * 2, rtol=1e-5)
  mispaired, _ = contrastive.info_nce(z1, z2[np.roll(np.arange(8), 1)], 0.2)
  assert float(mispaired) != pytest.approx(float(base), rel=1e-3)


def test_identical_views_of_orthogonal_examples_are_found():
  z = np.eye(6, dtype=np.float32)
  loss, accuracy = contrastive.info_nce(z, z, 0.05)
  assert float(accuracy) == 1.0 and float(loss) < 1e-6
  # The worst case: every view the same point, so the positive is one of
  # 2b - 1 equal choices.
  same = np.ones((6, 4), np.float32)
  loss, _ = contrastive.info_nce(same, same, 0.1)
  np.testing.assert_allclose(float(loss), np.log(11.0), rtol=1e-5)


def test_bad_shapes_are_named():
  with pytest.raises(ValueError, match=r"\[b, d\].*\(4, 3\).*\(4, 2\)"):
    contrastive.info_nce(jnp.ones((4, 3)), jnp.ones((4, 2)), 0.1)
