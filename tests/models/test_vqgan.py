"""The VQGAN tokenizer against the official implementation, and its options."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.presets import vqgan_imagenet
from maskgit_jax.models import vqgan as vqgan_lib
from tests import helpers


def official_tiny_vqgan(**overrides) -> vqgan_lib.VQGAN:
  kw = dict(filters=32, num_res_blocks=2, channel_multipliers=(1, 2),
            embedding_dim=16, codebook_size=64)
  kw.update(overrides)
  return vqgan_lib.VQGAN(**kw)


def test_encode_matches_official(parity):
  io = parity.io
  model = official_tiny_vqgan()
  quantized, aux = model.apply(parity.params("tokenizer"), io["tok_images"],
                               method=model.encode)
  np.testing.assert_allclose(aux["features"], io["tok_encoder_features"],
                             rtol=0, atol=2e-5)
  # Token ids exact wherever the official nearest code is not a numerical tie.
  decisive = io["tok_code_margin"] >= 1e-3
  np.testing.assert_array_equal(np.asarray(aux["ids"])[decisive],
                                io["tok_ids"][decisive])
  ids = model.apply(parity.params("tokenizer"), io["tok_images"],
                    method=model.encode_to_indices)
  assert ids.dtype == jnp.int32
  np.testing.assert_array_equal(ids, io["tok_ids"])
  np.testing.assert_array_equal(quantized, io["tok_quantized"])


def test_decode_matches_official(parity):
  model = official_tiny_vqgan()
  images = model.apply(parity.params("tokenizer"), parity.io["tok_ids"],
                       method=model.decode_from_indices)
  assert images.dtype == jnp.float32
  np.testing.assert_allclose(images, parity.io["tok_decoded"], rtol=0,
                             atol=5e-5)
  # The transformer fixtures' generated tokens decode to the fixture images.
  tokens = parity.io["gen_greedy_t0_final_seqs"][:, -1, 1:].reshape(2, 8, 8)
  images = model.apply(parity.params("tokenizer"), tokens,
                       method=model.decode_from_indices)
  np.testing.assert_allclose(images, parity.io["gen_greedy_t0_images"],
                             rtol=0, atol=5e-5)


@pytest.mark.slow  # trains or compiles for several seconds
def test_init_reproduces_official_checksums(parity, legacy_threefry):
  del legacy_threefry
  model = official_tiny_vqgan()
  variables = nn.unbox(jax.jit(model.init)(jax.random.PRNGKey(1),
                                           jnp.zeros((1, 16, 16, 3))))
  flat = flax.traverse_util.flatten_dict(variables, sep="/")
  expected = parity.json("init_checksums.json")["tokenizer"]
  assert set(flat) == set(expected)
  for path, check in expected.items():
    value = np.asarray(flat[path], np.float64)
    np.testing.assert_allclose(value.ravel()[:4], check["first"], atol=1e-6,
                               err_msg=path)
    np.testing.assert_allclose(np.abs(value).sum(), check["abs_sum"],
                               rtol=1e-5, err_msg=path)


@pytest.mark.parametrize("variant", ["256", "512"])
def test_released_config_has_released_param_shapes(parity, variant):
  config = vqgan_imagenet.get_config(variant)
  model = vqgan_lib.VQGAN(**config.model)
  size = config.image_size
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, size, size, 3)))
  flat = flax.traverse_util.flatten_dict(nn.unbox(shapes), sep="/")
  got = {path: list(v.shape) for path, v in flat.items()}
  assert got == parity.json("full_size_param_shapes.json")[
      f"tokenizer_imagenet{variant}"]
  assert model.factor == 16


@pytest.mark.slow  # trains or compiles for several seconds
def test_straight_through_gradient_reaches_the_encoder(parity):
  model = official_tiny_vqgan()
  variables = parity.params("tokenizer")
  images = parity.io["tok_images"]

  def loss(params):
    recon, aux = model.apply({"params": params}, images, train=True)
    return jnp.mean(recon**2) + aux["quantizer_loss"]

  grads = jax.jit(jax.grad(loss))(variables["params"])
  encoder_norms = [float(np.abs(np.asarray(g)).sum()) for g in
                   jax.tree_util.tree_leaves(grads["encoder"])]
  assert all(n > 0 for n in encoder_norms)
  assert float(jnp.abs(grads["quantizer"]["codebook"]).sum()) > 0

  # The quantizer's Jacobian is the identity in training mode.
  probe = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
  features = parity.io["tok_encoder_features"][:2]
  quantize = lambda f: model.apply(
      variables, f, train=True, method=lambda m, f, train: m.quantizer(
          f, train=train)[0])
  grad = jax.jit(jax.grad(lambda f: jnp.sum(quantize(f) * probe)))(features)
  np.testing.assert_allclose(grad, probe, rtol=1e-6)
  # Forward values are still the codes.
  np.testing.assert_allclose(quantize(features),
                             parity.io["tok_quantized"][:2], atol=1e-6)


def test_quantizer_losses_closed_form():
  quantizer = vqgan_lib.VectorQuantizer(codebook_size=2, embedding_dim=1,
                                        entropy_loss_ratio=0.0)
  params = {"params": {"codebook": jnp.array([[0.0], [1.0]])}}
  x = jnp.array([[0.25], [0.5], [2.0]])
  q, aux = quantizer.apply(params, x, train=True)
  np.testing.assert_array_equal(aux["ids"], [0, 0, 1])  # 0.5 ties -> first
  np.testing.assert_allclose(q, [[0.0], [0.0], [1.0]])
  mse = np.mean([0.25**2, 0.5**2, 1.0**2])
  np.testing.assert_allclose(aux["codebook_loss"], mse, rtol=1e-6)
  np.testing.assert_allclose(aux["commitment_loss"], 0.25 * mse, rtol=1e-6)


def test_entropy_loss_closed_form():
  k = 8
  # Uniform affinities: sample and average entropies are both log K.
  assert abs(float(vqgan_lib.entropy_loss(jnp.zeros((5, k))))) < 1e-3
  # K samples each sure of a different code: 0 - log K.
  confident = 100.0 * jnp.eye(k)
  np.testing.assert_allclose(
      vqgan_lib.entropy_loss(confident, temperature=1.0), -np.log(k),
      atol=1e-3)


def test_shortcut_option():
  x = jnp.ones((1, 8, 8, 32))
  official = vqgan_lib.ResBlock(64)
  corrected = vqgan_lib.ResBlock(64, shortcut="input")
  p_official = official.init(jax.random.PRNGKey(0), x)["params"]
  p_corrected = corrected.init(jax.random.PRNGKey(0), x)["params"]
  # The official 1x1 conv maps the 64-channel output; the corrected one the
  # 32-channel input.
  assert p_official["Conv_2"]["kernel"].value.shape == (1, 1, 64, 64)
  assert p_corrected["Conv_2"]["kernel"].value.shape == (1, 1, 32, 64)
  with pytest.raises(ValueError, match="shortcut must be one of"):
    vqgan_lib.ResBlock(64, shortcut="output").init(jax.random.PRNGKey(0), x)


def test_bad_image_sizes_are_reported():
  model = official_tiny_vqgan()
  with pytest.raises(ValueError, match="not a multiple of the token factor 2"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 15, 16, 3)))
  with pytest.raises(ValueError, match=r"must be \[batch, height, width, 3\]"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16)))


def test_bfloat16_activations_keep_float32_codes(parity):
  model = official_tiny_vqgan(dtype=jnp.bfloat16)
  apply = helpers.jit_apply(model)
  quantized, aux = apply(parity.params("tokenizer"), parity.io["tok_images"],
                         method="encode")
  assert quantized.dtype == jnp.float32 and aux["features"].dtype == jnp.float32
  # bf16 features move some near-tie codes, but most ids agree.
  assert np.mean(np.asarray(aux["ids"]) == parity.io["tok_ids"]) > 0.8
  decoded = apply(parity.params("tokenizer"), parity.io["tok_ids"],
                  method="decode_from_indices")
  assert decoded.dtype == jnp.float32
  np.testing.assert_allclose(decoded, parity.io["tok_decoded"], atol=0.15)
