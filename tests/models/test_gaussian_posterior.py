"""The VAE's Gaussian posterior: its KL term, its sampling, and a VQGAN
built on it (continuous latents) through the tokenizer train step."""

import flax.linen as nn
from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.models import gaussian_posterior
from tests import train_helpers as th


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_kl_is_the_expected_log_ratio_of_the_densities(seed):
  """KL(q || p) = E_q[log q(z) - log p(z)], estimated in float64 from
  400,000 samples of q, for random means and log-variances."""
  rng = np.random.default_rng(seed)
  mean = rng.normal(0, 1.5, (2, 3))
  logvar = rng.uniform(-3, 2, (2, 3))
  got = np.asarray(gaussian_posterior.kl_divergence(
      jnp.asarray(mean, jnp.float32), jnp.asarray(logvar, jnp.float32)))
  std = np.exp(0.5 * logvar)
  z = mean + std * rng.standard_normal((400_000, 2, 3))
  log_q = -0.5 * (((z - mean) / std) ** 2 + logvar + np.log(2 * np.pi))
  log_p = -0.5 * (z ** 2 + np.log(2 * np.pi))
  estimate = (log_q - log_p).mean(axis=0).sum(axis=-1)  # per sample [2]
  spread = (log_q - log_p).sum(axis=-1).std(axis=0) / np.sqrt(400_000)
  np.testing.assert_array_less(np.abs(got - estimate), 5 * spread + 1e-6)


def test_kl_is_zero_only_at_the_prior_and_grows_away_from_it():
  zero = jnp.zeros((1, 4, 4, 8))
  assert float(gaussian_posterior.kl_divergence(zero, zero)[0]) == 0.0
  for mean, logvar in [(0.5, 0.0), (0.0, 0.7), (0.0, -0.7), (-1.0, 1.0)]:
    kl = gaussian_posterior.kl_divergence(zero + mean, zero + logvar)
    # 128 elements, each 0.5 * (m^2 + e^v - 1 - v)
    want = 64 * (mean**2 + np.exp(logvar) - 1 - logvar)
    np.testing.assert_allclose(float(kl[0]), want, rtol=1e-5)
    assert float(kl[0]) > 0


def test_the_posterior_samples_around_its_mean_in_training_only():
  posterior = gaussian_posterior.GaussianPosterior(embedding_dim=4,
                                                   kl_weight=0.01)
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 8, 8, 6))
  variables = nn.unbox(posterior.init(jax.random.PRNGKey(1), x))
  latents, aux = posterior.apply(variables, x)
  np.testing.assert_array_equal(latents, aux["mean"])  # eval: the mean
  assert "kl_loss" not in aux

  def sample(seed):
    return posterior.apply(variables, x, train=True,
                           rngs={"sample": jax.random.PRNGKey(seed)})
  sampled, aux = sample(2)
  noise = np.asarray((sampled - aux["mean"]) * jnp.exp(-0.5 * aux["logvar"]))
  assert abs(noise.mean()) < 0.1 and abs(noise.std() - 1) < 0.1  # 2,048 draws
  np.testing.assert_array_equal(sample(2)[0], sampled)  # the rng decides
  assert not np.allclose(sample(3)[0], sampled)
  want = jnp.mean(gaussian_posterior.kl_divergence(aux["mean"],
                                                   aux["logvar"]))
  np.testing.assert_allclose(aux["kl_loss"], want, rtol=1e-6)
  np.testing.assert_allclose(aux["quantizer_loss"], 0.01 * want, rtol=1e-6)

  def loss(params):  # the reparameterised sample carries gradients
    z, _ = posterior.apply({"params": params}, x, train=True,
                           rngs={"sample": jax.random.PRNGKey(2)})
    return jnp.sum(z ** 2)
  grads = jax.grad(loss)(variables["params"])
  assert float(jnp.abs(grads["moments"]["kernel"]).sum()) > 0


def _kl_trainer():
  return th.tiny_tokenizer_trainer(
      dict(perceptual_weight=0.0, discriminator_start_step=100),
      quantizer_type="kl", kl_weight=1e-3)


def test_a_vae_tokenizer_has_latents_not_ids():
  model = _kl_trainer().vqgan
  images = jnp.zeros((2, 16, 16, 3))
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), images)
  latents = model.apply(variables, images, method=model.encode_to_latents)
  assert latents.shape == (2, 8, 8, model.embedding_dim)
  with pytest.raises(ValueError, match="continuous latents, not token ids"):
    model.apply(variables, images, method=model.encode_to_indices)


@pytest.mark.slow  # trains or compiles for several seconds
def test_the_tokenizer_step_trains_a_vae():
  trainer = _kl_trainer()
  images = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 3))
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(1), images))
  step = th.phased_step(trainer)
  history = []
  for i in range(6):
    state, metrics = step(state, images, jax.random.PRNGKey(i))
    history.append({k: float(v) for k, v in metrics.items()})
  assert all(np.isfinite(list(m.values())).all() for m in history)
  assert history[0]["kl_loss"] > 0 and "codebook_usage" not in history[0]
  assert history[-1]["reconstruction_loss"] < history[0]["reconstruction_loss"]
  np.testing.assert_allclose(  # the KL term is in the generator's loss
      history[0]["generator_loss"],
      history[0]["reconstruction_loss"] + 1e-3 * history[0]["kl_loss"],
      rtol=1e-5)


@pytest.mark.slow  # trains or compiles for several seconds
def test_the_loop_trains_a_vae_tokenizer_that_restores(tiny_vae):
  import json  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vae_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  workdir, _ = tiny_vae
  logged = [json.loads(line) for line in
            (workdir / "metrics.jsonl").read_text().splitlines()]
  last = [row for row in logged if "kl_loss" in row][-1]
  assert last["kl_loss"] > 0 and np.isfinite(last["generator_loss"])
  model, params = restore.load_tokenizer(workdir)
  preset = vae_animal_mnist.get_config("tiny").model
  assert model.continuous and model.kl_weight == preset.kl_weight
  images = jnp.full((1, 16, 16, 3), 0.5)
  latents = model.apply({"params": params}, images,
                        method=model.encode_to_latents)
  side = 16 // model.factor
  assert latents.shape == (1, side, side, model.embedding_dim)


@pytest.mark.slow  # trains or compiles for several seconds
def test_pretokenizing_a_vae_caches_latents_and_their_scale(tiny_vae):
  """Posterior means of each image and its mirror, ``1 / std`` beside them;
  the token stages refuse the file in one line."""
  from maskgit_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  workdir, out = tiny_vae
  data = np.load(out)
  assert "tokens" not in data
  model, params = restore.load_tokenizer(workdir)
  side = 16 // model.factor
  assert data["latents"].shape == (2000, 2, side, side, model.embedding_dim)
  np.testing.assert_allclose(data["latent_scale"],
                             1 / data["latents"].std(), rtol=1e-5)
  source = input_pipeline.make_source("animal_mnist", "test")
  image = input_pipeline.Preprocess(16, train=False)(source[3][0], None)
  mirrored = np.stack([image, image[:, ::-1]])
  want = model.apply({"params": params}, mirrored,
                     method=model.encode_to_latents)
  np.testing.assert_allclose(data["latents"][3], want, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="continuous latents"):
    input_pipeline.make_source(f"tokens:{out}", "train")
