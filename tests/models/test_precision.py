"""Inference precisions: bfloat16 forwards stay within bfloat16 tolerance of
float32, really compute in bfloat16, and decode to complete, valid token
maps; float32 is the unchanged model (the official parity tests use it)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.decoding import parallel_decode
from maskgit_jax.models import transformer as transformer_lib

from tests import helpers

GRID = (4, 4)
N = GRID[0] * GRID[1]
MODEL = transformer_lib.Transformer(
    codebook_size=32, num_classes=3, hidden_size=64, num_layers=2,
    num_heads=4, mlp_dim=128, max_position_embeddings=1 + N)
BF16 = ("bfloat16", "bfloat16_matmul")


def _ids(seed: int = 0) -> jax.Array:
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, MODEL.codebook_size, (4, 1 + N))
  ids[:, 0] = MODEL.codebook_size + np.arange(4) % 3  # class tokens
  ids[:, 1::3] = MODEL.layout.mask_id
  return jnp.asarray(ids, jnp.int32)


def _logits(model, params, ids):
  """Jitted, as decoding runs it (one program, not one per operation)."""
  return jax.jit(transformer_lib.CodebookLogits(model))(params, ids)


def test_float32_is_the_model_unchanged():
  params = helpers.init_params(MODEL, 1 + N)
  model, same = transformer_lib.with_precision(MODEL, params, "float32")
  assert model is MODEL and same is params


@pytest.mark.slow  # trains or compiles for several seconds
@pytest.mark.parametrize("precision", BF16)
def test_bfloat16_forward_is_within_bfloat16_tolerance(precision):
  params = helpers.init_params(MODEL, 1 + N)
  ids = _ids()
  ref = _logits(MODEL, params, ids)
  model, cast = transformer_lib.with_precision(MODEL, params, precision)
  got = _logits(model, cast, ids)
  assert got.dtype == jnp.float32  # logits stay float32 for sampling
  err = np.abs(np.asarray(got) - np.asarray(ref))
  scale = float(np.abs(np.asarray(ref)).max())
  # A few bfloat16 roundings (8 significant bits, 2**-8 relative) per layer.
  assert err.max() <= 0.03 * scale, (err.max(), scale)
  assert err.max() > 0  # it did compute in bfloat16
  # The choice a decode makes: the top code agrees almost everywhere.
  agree = np.mean(np.argmax(got, -1) == np.argmax(ref, -1))
  assert agree >= 0.9


def test_bfloat16_stores_parameters_in_bfloat16():
  params = helpers.init_params(MODEL, 1 + N)
  _, cast = transformer_lib.with_precision(MODEL, params, "bfloat16")
  assert {x.dtype for x in jax.tree.leaves(cast)} == {jnp.dtype(jnp.bfloat16)}
  _, kept = transformer_lib.with_precision(MODEL, params, "bfloat16_matmul")
  assert {x.dtype for x in jax.tree.leaves(kept)} == {jnp.dtype(jnp.float32)}


def test_matmul_precision_multiplies_in_bfloat16():
  params = helpers.init_params(MODEL, 1 + N)
  model, _ = transformer_lib.with_precision(MODEL, params, "bfloat16_matmul")
  text = jax.jit(lambda p, i: _logits(model, p, i)).lower(
      params, _ids()).as_text()
  dots = [line for line in text.splitlines() if "dot_general" in line]
  assert dots and all("bf16" in line for line in dots)


@pytest.mark.parametrize("precision", BF16)
def test_bfloat16_decode_fills_every_mask_and_keeps_known_tokens(precision):
  params = helpers.init_params(MODEL, 1 + N, seed=1)
  model, cast = transformer_lib.with_precision(MODEL, params, precision)
  ids = _ids(1)
  state = parallel_decode.decode(
      cast, ids, jax.random.PRNGKey(0),
      tokens_to_logits=transformer_lib.CodebookLogits(model), num_iter=4,
      mask_token_id=model.layout.mask_id)
  final = np.asarray(state.final)
  known = np.asarray(ids) != model.layout.mask_id
  np.testing.assert_array_equal(final[known], np.asarray(ids)[known])
  assert (final[:, 1:] < model.codebook_size).all()
  assert (final[:, 1:] >= 0).all()


def test_unknown_precision_is_refused():
  with pytest.raises(ValueError, match="precision must be one of"):
    transformer_lib.with_precision(MODEL, {}, "float16")
