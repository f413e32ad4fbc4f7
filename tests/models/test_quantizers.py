"""Quantizer variants: closed forms, numpy references, training wiring."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.models import quantizers
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.presets import vqgan_imagenet
from maskgit_jax.trainers import tokenizer_step
from tests import train_helpers as th


def test_ema_update_equals_its_closed_form():
  k, d, decay, eps = 4, 3, 0.9, 1e-5
  rng = np.random.default_rng(0)
  cluster = rng.uniform(0.5, 2.0, k).astype(np.float32)
  sums = rng.normal(size=(k, d)).astype(np.float32)
  ids = np.array([[0, 2], [2, 2]])
  x = rng.normal(size=(2, 2, d)).astype(np.float32)
  new_cluster, new_sums, codebook = quantizers.ema_codebook_update(
      jnp.asarray(cluster), jnp.asarray(sums), jnp.asarray(ids),
      jnp.asarray(x), decay=decay, epsilon=eps)
  counts = np.array([1, 0, 3, 0], np.float32)
  batch_sums = np.zeros((k, d), np.float32)
  batch_sums[0] = x[0, 0]
  batch_sums[2] = x[0, 1] + x[1, 0] + x[1, 1]
  want_cluster = decay * cluster + (1 - decay) * counts
  want_sums = decay * sums + (1 - decay) * batch_sums
  n = want_cluster.sum()
  smoothed = (want_cluster + eps) / (n + k * eps) * n
  np.testing.assert_allclose(new_cluster, want_cluster, rtol=1e-6)
  np.testing.assert_allclose(new_sums, want_sums, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(codebook, want_sums / smoothed[:, None],
                             rtol=1e-5)


def test_lfq_codes_are_the_sign_pattern_and_ids_its_bits():
  q = quantizers.LookupFreeQuantizer(codebook_size=16, embedding_dim=4)
  x = jnp.array([[0.3, -1.0, 2.0, -0.1], [-0.2, 0.5, -0.5, 0.7]])
  (quantized, aux), _ = q.init_with_output(jax.random.PRNGKey(0), x)
  np.testing.assert_array_equal(quantized, np.sign(x))
  np.testing.assert_array_equal(aux["ids"], [1 + 4, 2 + 8])
  np.testing.assert_array_equal(q.apply({}, aux["ids"], method=q.lookup),
                                np.sign(x))


def test_lfq_entropy_terms_match_numpy():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(5, 3)).astype(np.float32)
  temperature = 0.5
  sample, batch = quantizers.lfq_entropy_terms(jnp.asarray(z),
                                               temperature=temperature)
  codes = np.array([[1 if (k >> i) & 1 else -1 for i in range(3)]
                    for k in range(8)], np.float64)
  logits = -((z[:, None, :] - codes[None]) ** 2).sum(-1) / temperature
  q = np.exp(logits - logits.max(-1, keepdims=True))
  q /= q.sum(-1, keepdims=True)
  want_sample = -(q * np.log(q)).sum(-1).mean()
  mean_q = q.mean(0)
  want_batch = -(mean_q * np.log(mean_q)).sum()
  np.testing.assert_allclose(sample, want_sample, rtol=1e-4)
  np.testing.assert_allclose(batch, want_batch, rtol=1e-4)


def test_lfq_needs_codebook_size_two_to_the_dim():
  q = quantizers.LookupFreeQuantizer(codebook_size=100, embedding_dim=7)
  with pytest.raises(ValueError, match="codebook_size = 2\\*\\*embedding_dim"):
    q.init(jax.random.PRNGKey(0), jnp.zeros((2, 7)))


def test_factorized_lookup_is_cosine_nearest_and_projected_back():
  q = quantizers.FactorizedQuantizer(codebook_size=6, embedding_dim=5,
                                     factorized_dim=3)
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  (out, aux), variables = q.init_with_output(jax.random.PRNGKey(0), x)
  variables = nn.unbox(variables)
  p = variables["params"]
  z = x @ p["proj_in"]["kernel"] + p["proj_in"]["bias"]
  z /= jnp.linalg.norm(z, axis=-1, keepdims=True)
  codes = p["codebook"] / jnp.linalg.norm(p["codebook"], axis=-1,
                                         keepdims=True)
  np.testing.assert_array_equal(aux["ids"], jnp.argmax(z @ codes.T, -1))
  assert out.shape == (4, 5)
  np.testing.assert_allclose(
      q.apply(variables, aux["ids"], method=q.lookup), out, atol=1e-5)
  assert set(p) == {"proj_in", "proj_out", "codebook"}


def _trainer(quantizer_type, **weights):
  config = vqgan_imagenet.get_config("tiny")
  model = dict(quantizer_type=quantizer_type, entropy_loss_ratio=0.0)
  if quantizer_type == "lfq":
    model.update(embedding_dim=6, codebook_size=64)
  weights = dict(dict(config.losses), perceptual_weight=0.0, **weights)
  return th.tiny_tokenizer_trainer(weights, **model)


@pytest.mark.slow  # trains or compiles for several seconds
@pytest.mark.parametrize("quantizer_type", ["vq_ema", "factorized", "lfq"])
def test_every_quantizer_trains_and_reports_usage(quantizer_type):
  trainer = _trainer(quantizer_type, discriminator_start_step=100)
  images = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 3))
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(1), images))
  step = th.phased_step(trainer)
  for i in range(2):
    state, metrics = step(state, images, jax.random.PRNGKey(i))
  assert np.isfinite(float(metrics["generator_loss"]))
  assert 0 < float(metrics["codebook_usage"]) <= 1
  assert float(metrics["codebook_perplexity"]) >= 1
  if quantizer_type == "vq_ema":
    q = state.params["quantizer"]
    # The codebook is the smoothed average, not an optimizer's doing.
    n = q["ema_cluster_size"].sum()
    smoothed = (q["ema_cluster_size"] + 1e-5) / (n + n.size * 1e-5) * n
    np.testing.assert_allclose(q["codebook"],
                               q["ema_embed_sum"] / smoothed[:, None],
                               rtol=1e-5, atol=1e-6)


def test_the_default_quantizer_keeps_the_official_parameter_tree():
  model = vqgan_lib.VQGAN(**vqgan_imagenet.get_config("tiny").model)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 16, 16, 3)))["params"]
  assert set(params["quantizer"]) == {"codebook"}


def test_dead_code_restart_is_refused_where_there_is_no_codebook_to_move():
  with pytest.raises(ValueError, match="dead_code_restart"):
    _trainer("lfq", dead_code_restart=True)


@pytest.mark.slow  # trains or compiles for several seconds
def test_lazy_r1_runs_every_kth_step_scaled_by_k():
  images = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 3))
  every, lazy = _trainer("vq"), _trainer("vq", r1_interval=3)
  state = nn.unbox(jax.jit(every.init)(jax.random.PRNGKey(1), images))
  step_every, step_lazy = jax.jit(every.train_step), jax.jit(lazy.train_step)
  for i in range(4):
    s = state.replace(step=jnp.int32(i))
    _, m_every = step_every(s, images, jax.random.PRNGKey(2))
    _, m_lazy = step_lazy(s, images, jax.random.PRNGKey(2))
    assert float(m_every["r1_penalty"]) > 0
    want = 3 * float(m_every["r1_penalty"]) if i % 3 == 0 else 0.0
    np.testing.assert_allclose(float(m_lazy["r1_penalty"]), want, rtol=1e-5)
  with pytest.raises(ValueError, match="r1_interval"):
    tokenizer_step.LossWeights(r1_interval=0)


@pytest.mark.slow  # trains or compiles for several seconds
def test_static_phases_compute_what_the_traced_switches_compute():
  """The loop compiles one program per phase; each equals the lax.cond
  program at the same step."""
  trainer = _trainer("vq", r1_interval=2, discriminator_start_step=1)
  images = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 3))
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(1), images))
  traced_step = jax.jit(trainer.train_step)  # one program for every step
  static_step = jax.jit(trainer.train_step, static_argnames="phase")
  for i in range(3):
    s = state.replace(step=jnp.int32(i))
    phase = trainer.phase(i)
    assert phase == (i >= 1, i % 2 == 0)
    traced = traced_step(s, images, jax.random.PRNGKey(2))
    static = static_step(s, images, jax.random.PRNGKey(2), phase=phase)
    # Metrics to float precision; params to well within one Adam step
    # (1e-3 here), whose sign follows gradients that can be ~0.
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        traced[1], static[1])
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
        traced[0], static[0])
