"""The speed benchmark's autoregressive baselines are the trained prior's
model and decodes (one model definition)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import ar_baseline
from maskgit_jax.models import causal_transformer


@pytest.mark.slow  # trains or compiles for several seconds
def test_baselines_decode_the_library_prior_the_same_way():
  model = ar_baseline.prior(codebook=40, classes=11, hidden=32, layers=2,
                            heads=4, mlp=64, tokens=16)
  assert isinstance(model, causal_transformer.CausalTransformer)
  params = ar_baseline.init(model)
  first = jnp.array([40 + 3, 40 + 7])
  rng = jax.random.PRNGKey(5)
  a = ar_baseline.recompute_decode(model, params, first, rng)
  b = ar_baseline.kv_cache_decode(model, params, first, rng)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(a[:, 0], first)
  assert len(np.unique(np.asarray(a[:, 1:]))) > 3  # sampled, not constant
  # A truncated recompute (the benchmark times a few steps) is a prefix.
  c = ar_baseline.recompute_decode(model, params, first, rng, num_steps=5)
  np.testing.assert_array_equal(c[:, :6], a[:, :6])
  assert (c[:, 6:] == model.layout.mask_id).all()
