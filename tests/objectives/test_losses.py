"""Tokenizer losses on closed-form cases; the LPIPS network and its loader."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.objectives import losses
from maskgit_jax.models import discriminator as discriminator_lib
from maskgit_jax.models import lpips as lpips_lib


def test_reconstruction_losses():
  a = jnp.array([[0.0, 1.0], [2.0, 3.0]])
  b = jnp.array([[1.0, 1.0], [0.0, 3.0]])
  assert losses.l1_loss(predictions=a, targets=b) == pytest.approx(0.75)
  assert losses.l2_loss(predictions=a, targets=b) == pytest.approx(1.25)
  assert losses.reconstruction_loss("l1") is losses.l1_loss
  with pytest.raises(ValueError, match="'l3'"):
    losses.reconstruction_loss("l3")


def test_gan_losses_closed_form():
  zero = jnp.zeros((4,))
  assert losses.non_saturating_generator_loss(
      fake_logits=zero) == pytest.approx(math.log(2))
  assert losses.non_saturating_discriminator_loss(
      real_logits=zero, fake_logits=zero) == pytest.approx(2 * math.log(2))
  # A perfect discriminator has ~0 loss; the generator then has a large one.
  assert losses.non_saturating_discriminator_loss(
      real_logits=zero + 30, fake_logits=zero - 30) < 1e-10
  assert losses.non_saturating_generator_loss(
      fake_logits=zero - 30) == pytest.approx(30, rel=1e-6)
  assert losses.hinge_discriminator_loss(
      real_logits=zero + 2, fake_logits=zero - 2) == 0
  assert losses.hinge_discriminator_loss(
      real_logits=zero, fake_logits=zero) == pytest.approx(2)
  assert losses.hinge_generator_loss(fake_logits=zero + 3) == pytest.approx(-3)
  with pytest.raises(ValueError, match="'wasserstein'"):
    losses.gan_losses("wasserstein")


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_norm():
  a = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 3))
  images = jax.random.uniform(jax.random.PRNGKey(1), (5, 4, 4, 3))
  d = lambda x: jnp.sum(x * a, axis=(1, 2, 3))
  np.testing.assert_allclose(
      losses.r1_penalty(discriminator_fn=d, images=images),
      jnp.sum(a**2), rtol=1e-5)
  # A quadratic discriminator: grad = 2x, so the penalty is 4 E|x|^2.
  d2 = lambda x: jnp.sum(x**2, axis=(1, 2, 3))
  np.testing.assert_allclose(
      losses.r1_penalty(discriminator_fn=d2, images=images),
      4 * jnp.mean(jnp.sum(images**2, axis=(1, 2, 3))), rtol=1e-5)


def test_lecam_closed_form():
  value = losses.lecam_regularization(
      real_logits=jnp.array([1.0, -1.0]), fake_logits=jnp.array([0.0, 2.0]),
      ema_real=0.5, ema_fake=0.0)
  # relu(real - 0)^2 -> [1, 0]; relu(0.5 - fake)^2 -> [0.25, 0].
  assert value == pytest.approx(0.5 + 0.125)


@pytest.mark.slow  # trains or compiles for several seconds
def test_discriminator_shapes_and_errors():
  disc = discriminator_lib.StyleGANDiscriminator(filters=8,
                                                 channel_multipliers=(1, 2))
  x = jnp.zeros((3, 16, 16, 3))
  logits = jax.jit(disc.apply)(jax.jit(disc.init)(jax.random.PRNGKey(0), x), x)
  assert logits.shape == (3,) and logits.dtype == jnp.float32
  with pytest.raises(ValueError, match="not divisible by"):
    disc.init(jax.random.PRNGKey(0), jnp.zeros((1, 18, 16, 3)))


def test_blur_downsample_preserves_constants_and_halves():
  x = jnp.full((1, 8, 8, 2), 3.0)
  y = discriminator_lib.blur_downsample(x)
  assert y.shape == (1, 4, 4, 2)
  # Interior values of a constant image stay constant (a normalised filter).
  np.testing.assert_allclose(y[:, 1:-1, 1:-1], 3.0, rtol=1e-6)


def test_blur_downsample_equals_the_depthwise_convolution():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 8, 5))
  np.testing.assert_allclose(discriminator_lib.blur_downsample(x),
                             discriminator_lib.blur_downsample_conv(x),
                             rtol=1e-5, atol=1e-6)
  cotangent = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 4, 5))
  grads = [jax.vjp(f, x)[1](cotangent)[0] for f in (
      discriminator_lib.blur_downsample,
      discriminator_lib.blur_downsample_conv)]
  np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def _synthetic_torch_state_dicts(seed=0):
  """State dicts with the documented pytorch names and shapes."""
  rng = np.random.default_rng(seed)
  vgg, in_ch, i = {}, 3, 0
  for channels, convs in lpips_lib.VGG16_BLOCKS:
    for _ in range(convs):
      index = lpips_lib.TORCHVISION_VGG16_CONVS[i]
      vgg[f"features.{index}.weight"] = rng.normal(
          0, 0.05, (channels, in_ch, 3, 3)).astype(np.float32)
      vgg[f"features.{index}.bias"] = rng.normal(0, 0.05, channels).astype(
          np.float32)
      in_ch, i = channels, i + 1
  vgg["classifier.0.weight"] = np.zeros((2, 2), np.float32)  # ignored
  lin = {f"lin{l}.model.1.weight": rng.uniform(0, 1, (1, c, 1, 1)).astype(
      np.float32) for l, (c, _) in enumerate(lpips_lib.VGG16_BLOCKS)}
  return vgg, lin


@pytest.mark.slow  # trains or compiles for several seconds
def test_lpips_weights_load_from_pytorch_names(tmp_path):
  vgg, lin = _synthetic_torch_state_dicts()
  arrays = lpips_lib.from_torch_state_dicts(vgg, lin)
  assert {k: v.shape for k, v in arrays.items()} == lpips_lib.param_shapes()
  path = tmp_path / "lpips.npz"
  np.savez(path, **arrays)
  params = lpips_lib.load_params(path)
  model = lpips_lib.LPIPS()
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3))
  expected_tree = jax.tree_util.tree_map(
      lambda v: v.shape, jax.eval_shape(model.init, jax.random.PRNGKey(0), x,
                                        x)["params"])
  assert jax.tree_util.tree_map(lambda v: v.shape, params) == expected_tree
  # The torch OIHW kernel lands as HWIO.
  np.testing.assert_array_equal(params["vgg_1"]["kernel"][:, :, 5, 7],
                                vgg["features.2.weight"][7, 5])
  np.testing.assert_array_equal(params["lin_2"],
                                lin["lin2.model.1.weight"].reshape(-1))
  # A distance: zero on identical images, symmetric, positive otherwise.
  y = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 3))
  d = lambda a, b: jax.jit(model.apply)({"params": params}, a, b)
  np.testing.assert_allclose(d(x, x), 0.0, atol=1e-6)
  np.testing.assert_allclose(d(x, y), d(y, x), rtol=1e-5)
  assert (d(x, y) > 0).all()


def test_lpips_loader_names_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    lpips_lib.load_params(tmp_path / "missing.npz")
  vgg, lin = _synthetic_torch_state_dicts()
  arrays = lpips_lib.from_torch_state_dicts(vgg, lin)
  arrays["vgg_0/kernel"] = arrays["vgg_0/kernel"][..., :10]
  del arrays["lin_4/kernel"]
  path = tmp_path / "bad.npz"
  np.savez(path, **arrays)
  with pytest.raises(ValueError, match=r"missing lin_4/kernel.*vgg_0/kernel "
                     r"has shape \(3, 3, 3, 10\)"):
    lpips_lib.load_params(path)
