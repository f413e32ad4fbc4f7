"""The tokenizer train step: it learns, gates the GAN, restarts dead codes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.presets import vqgan_imagenet
from maskgit_jax.models import discriminator as discriminator_lib
from maskgit_jax.models import lpips as lpips_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import loop
from maskgit_jax.trainers import tokenizer_step
from tests import train_helpers as th


def smooth_images(n, size=16, seed=0):
  """Low-frequency random colour fields in [0, 1]."""
  low = jax.random.uniform(jax.random.PRNGKey(seed), (n, 4, 4, 3))
  return jax.image.resize(low, (n, size, size, 3), "bilinear")


def tiny_trainer(**weights) -> tokenizer_step.TokenizerTrainer:
  return th.tiny_tokenizer_trainer(weights)


@pytest.mark.slow  # trains or compiles for several seconds
def test_reconstruction_loss_halves_on_a_fixed_batch():
  images = smooth_images(8)
  trainer = tiny_trainer(discriminator_start_step=60)
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0), images))
  step = th.phased_step(trainer)
  history = []
  for i in range(150):
    state, metrics = step(state, images, jax.random.PRNGKey(i))
    loop.check_finite(metrics, i)
    history.append(metrics)
  first = float(history[0]["reconstruction_loss"])
  last = float(history[-1]["reconstruction_loss"])
  assert last < 0.5 * first, (first, last)
  # The discriminator joined at step 60 and then trained with R1.
  assert float(history[59]["discriminator_loss"]) == 0.0
  assert float(history[60]["discriminator_loss"]) > 0.0
  assert float(history[-1]["r1_penalty"]) > 0.0
  assert 0 < float(history[-1]["codebook_usage"]) <= 1
  assert 1 <= float(history[-1]["codebook_perplexity"]) <= 64
  assert int(state.step) == 150


@pytest.mark.slow  # trains or compiles for several seconds
def test_discriminator_is_frozen_before_its_start_step():
  images = smooth_images(4)
  trainer = tiny_trainer(discriminator_start_step=5)
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0), images))
  step = jax.jit(trainer.train_step)
  new_state, metrics = step(state, images, jax.random.PRNGKey(0))
  jax.tree_util.tree_map(np.testing.assert_array_equal, state.disc_params,
                         new_state.disc_params)
  assert float(metrics["r1_penalty"]) == 0.0
  started = step(state.replace(step=jnp.array(5, jnp.int32)), images,
                 jax.random.PRNGKey(0))[0]
  changed = jax.tree_util.tree_map(lambda a, b: bool((a != b).any()),
                                   state.disc_params, started.disc_params)
  assert any(jax.tree_util.tree_leaves(changed))


@pytest.mark.slow  # trains or compiles for several seconds
def test_dead_codes_restart_on_batch_features():
  images = smooth_images(4)
  trainer = tiny_trainer(dead_code_restart=True, discriminator_start_step=10)
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0), images))
  k = trainer.vqgan.codebook_size
  dead = jnp.arange(k) < 10
  state = state.replace(code_usage=jnp.where(dead, 0.0, 1.0 / k))
  new_state, metrics = th.phased_step(trainer)(state, images,
                                                   jax.random.PRNGKey(3))
  assert int(metrics["restarted_codes"]) >= 10
  _, aux = trainer.vqgan.apply({"params": state.params}, images,
                               method=trainer.vqgan.encode)
  features = np.asarray(aux["features"]).reshape(-1, aux["features"].shape[-1])
  codebook = np.asarray(new_state.params["quantizer"]["codebook"])
  for row in codebook[:10]:  # each restarted code is a batch feature vector
    assert np.abs(features - row).max(axis=1).min() < 0.2
  assert (np.asarray(new_state.code_usage)[:10] == 1.0 / k).all()


@pytest.mark.slow  # trains or compiles for several seconds
def test_perceptual_loss_is_used_when_configured():
  images = smooth_images(2)  # 16x16: VGG's four poolings leave 1x1
  config = vqgan_imagenet.get_config("tiny")
  trainer = tiny_trainer(perceptual_weight=0.5)
  trainer = tokenizer_step.TokenizerTrainer(
      vqgan=vqgan_lib.VQGAN(**config.model),
      discriminator=discriminator_lib.StyleGANDiscriminator(
          **config.discriminator),
      optimizer=trainer.optimizer, disc_optimizer=trainer.disc_optimizer,
      weights=trainer.weights, perceptual=lpips_lib.LPIPS())
  lpips_params = trainer.perceptual.init(jax.random.PRNGKey(0), images,
                                         images)["params"]
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0), images))
  _, metrics = th.phased_step(trainer)(state, images,
                                           jax.random.PRNGKey(0),
                                           perceptual_params=lpips_params)
  assert float(metrics["perceptual_loss"]) > 0


@pytest.mark.slow  # trains or compiles for several seconds
def test_non_finite_metrics_raise_a_clear_error():
  with pytest.raises(FloatingPointError,
                     match=r"at step 7: generator_loss=nan, r1_penalty=inf"):
    loop.check_finite(
        {"generator_loss": jnp.nan, "r1_penalty": jnp.inf, "ok": 1.0}, 7)
  loop.check_finite({"ok": jnp.float32(1.0)}, 0)
  # A NaN image batch makes the step itself produce non-finite values.
  images = smooth_images(2).at[0, 0, 0, 0].set(jnp.nan)
  trainer = tiny_trainer()
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0), smooth_images(2)))
  _, metrics = th.phased_step(trainer)(state, images,
                                           jax.random.PRNGKey(0))
  with pytest.raises(FloatingPointError, match="reconstruction_loss=nan"):
    loop.check_finite(metrics, 0)


def test_bad_loss_names_are_reported():
  with pytest.raises(ValueError, match="'l3'"):
    tokenizer_step.LossWeights(reconstruction="l3")


@pytest.mark.slow  # trains or compiles for several seconds
def test_adaptive_weight_matches_a_hand_computation():
  """|d rec / dW| / (|d adv / dW| + 1e-4) at the decoder's last kernel W,
  here from gradients through the whole model."""
  trainer = tiny_trainer(adaptive_adversarial_weight=True,
                         perceptual_weight=0.0, reconstruction_weight=2.0)
  images = smooth_images(4)
  state = nn.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0), images))
  _, metrics = th.phased_step(trainer)(state, images,
                                           jax.random.PRNGKey(1))
  model, disc = trainer.vqgan, trainer.discriminator

  def rec(params):
    recon, _ = model.apply({"params": params}, images, train=True)
    return 2.0 * jnp.mean((recon - images) ** 2)

  def adv(params):
    recon, _ = model.apply({"params": params}, images, train=True)
    logits = disc.apply({"params": state.disc_params}, recon)
    return jnp.mean(jax.nn.softplus(-logits))

  last = vqgan_lib.last_layer_name(state.params["decoder"])
  g_rec = jax.jit(jax.grad(rec))(state.params)["decoder"][last]["kernel"]
  g_adv = jax.jit(jax.grad(adv))(state.params)["decoder"][last]["kernel"]
  want = jnp.linalg.norm(g_rec) / (jnp.linalg.norm(g_adv) + 1e-4)
  np.testing.assert_allclose(float(metrics["adaptive_weight"]), float(want),
                             rtol=1e-4)
  assert float(metrics["adaptive_weight"]) != 1.0
  # Off by default: the adversarial term keeps its plain weight.
  _, plain = jax.jit(tiny_trainer().train_step)(state, images,
                                                jax.random.PRNGKey(1))
  assert float(plain["adaptive_weight"]) == 1.0


def test_last_layer_alone_reproduces_the_decoder_output():
  model = vqgan_lib.VQGAN(**vqgan_imagenet.get_config("tiny").model)
  images = smooth_images(2)
  params = nn.unbox(model.init(jax.random.PRNGKey(0), images))["params"]
  (recon, _), inter = model.apply({"params": params}, images,
                                  mutable=["intermediates"])
  last = vqgan_lib.last_layer_name(params["decoder"])
  again = vqgan_lib.last_layer(
      params["decoder"][last],
      inter["intermediates"]["decoder"]["last_layer_input"][0])
  np.testing.assert_allclose(again, recon, rtol=1e-5, atol=1e-5)
