"""The transformer against the official implementation, and its options."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.presets import common
from maskgit_jax.presets import maskgit_imagenet
from maskgit_jax.models import transformer as transformer_lib
from tests import helpers
from tests import train_helpers as th


def test_logits_match_official(parity):
  model = helpers.official_tiny_transformer()
  logits = model.apply(parity.params("transformer"), parity.io["tf_input_ids"])
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, parity.io["tf_logits"], rtol=0, atol=1e-5)


def test_codebook_logits_are_the_first_rows_of_the_full_logits(parity):
  model = helpers.official_tiny_transformer()
  variables = parity.params("transformer")
  full = model.apply(variables, parity.io["tf_input_ids"])
  codes = transformer_lib.CodebookLogits(model)(variables["params"],
                                                parity.io["tf_input_ids"])
  assert codes.shape == full.shape[:-1] + (model.codebook_size,)
  np.testing.assert_allclose(codes, full[..., :model.codebook_size],
                             rtol=0, atol=1e-6)


def test_official_mask_id_and_last_row_are_the_same_token(parity):
  model = helpers.official_tiny_transformer()
  ids = parity.io["tf_input_ids"]
  canonical = np.where(ids == -1, model.layout.mask_id, ids)
  assert (canonical != ids).any()
  variables = parity.params("transformer")
  np.testing.assert_array_equal(model.apply(variables, ids),
                                model.apply(variables, canonical))


@pytest.mark.slow  # trains or compiles for several seconds
def test_init_reproduces_official_checksums(parity, legacy_threefry):
  del legacy_threefry  # The official init drew its bits the legacy way.
  model = helpers.official_tiny_transformer()
  variables = nn.unbox(jax.jit(model.init)(jax.random.PRNGKey(0),
                                           jnp.zeros((1, 65), jnp.int32)))
  flat = flax.traverse_util.flatten_dict(variables, sep="/")
  expected = parity.json("init_checksums.json")["transformer"]
  assert set(flat) == set(expected)
  for path, check in expected.items():
    value = np.asarray(flat[path], np.float64)
    assert list(value.shape) == check["shape"], path
    np.testing.assert_allclose(value.sum(), check["sum"], atol=1e-3, err_msg=path)
    np.testing.assert_allclose(np.abs(value).sum(), check["abs_sum"],
                               rtol=1e-5, err_msg=path)
    np.testing.assert_allclose(value.ravel()[:4], check["first"], atol=1e-6,
                               err_msg=path)


@pytest.mark.parametrize("variant", ["256", "512"])
def test_released_configs_have_released_param_shapes(parity, variant):
  config = maskgit_imagenet.get_config(variant)
  model = transformer_lib.Transformer(**config.model)
  seq_len = config.model.max_position_embeddings
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, seq_len), jnp.int32))
  flat = flax.traverse_util.flatten_dict(nn.unbox(shapes), sep="/")
  got = {path: list(v.shape) for path, v in flat.items()}
  assert got == parity.json("full_size_param_shapes.json")[
      f"transformer_imagenet{variant}"]


def test_every_param_has_logical_axes_covered_by_the_rules():
  model = helpers.official_tiny_transformer()
  boxed = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                         jnp.zeros((1, 65), jnp.int32))["params"]
  leaves = jax.tree_util.tree_leaves(
      boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  ruled = {name for name, _ in common.LOGICAL_AXIS_RULES}
  for leaf in leaves:
    assert isinstance(leaf, nn.LogicallyPartitioned), leaf
    assert len(leaf.names) == leaf.value.ndim, leaf
    assert set(leaf.names) <= ruled, leaf.names


def _random_ids(model, batch=2, length=65, seed=0):
  return jax.random.randint(jax.random.PRNGKey(seed), (batch, length), -1,
                            model.layout.vocab_size)


@pytest.mark.slow  # trains or compiles for several seconds
def test_remat_and_attention_impls_leave_outputs_unchanged(parity):
  variables = parity.params("transformer")
  base = helpers.official_tiny_transformer()
  ids = _random_ids(base)
  # Jitted, as training and sampling run them (one program, not one per op).
  expected = jax.jit(base.apply)(variables, ids)
  for variant in (base.clone(remat=True), base.clone(attention_impl="xla")):
    np.testing.assert_allclose(jax.jit(variant.apply)(variables, ids),
                               expected, atol=1e-5)
  # Gradients through the rematerialised blocks equal the plain ones.
  loss = lambda m: lambda p: jnp.mean(m.apply(p, ids) ** 2)
  g_plain = jax.jit(jax.grad(loss(base)))(variables)
  g_remat = jax.jit(jax.grad(loss(base.clone(remat=True))))(variables)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g_plain,
      g_remat)


@pytest.mark.slow  # trains or compiles for several seconds
def test_bfloat16_activations_keep_float32_params_and_logits(parity):
  variables = parity.params("transformer")
  model = helpers.official_tiny_transformer().clone(dtype=jnp.bfloat16)
  ids = parity.io["tf_input_ids"]
  logits = model.apply(variables, ids)
  assert logits.dtype == jnp.float32
  # bf16 has an 8-bit mantissa: close to the f32 logits, not equal.
  np.testing.assert_allclose(logits, parity.io["tf_logits"], atol=0.1)
  params = nn.unbox(model.init(jax.random.PRNGKey(0), ids))
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))


def test_dropout_is_active_only_when_not_deterministic(parity):
  variables = parity.params("transformer")
  model = helpers.official_tiny_transformer()
  ids = parity.io["tf_input_ids"]
  train = lambda seed: model.apply(variables, ids, deterministic=False,
                                   rngs={"dropout": jax.random.PRNGKey(seed)})
  assert not np.allclose(train(0), train(1))
  np.testing.assert_array_equal(train(0), train(0))
  with pytest.raises(flax.errors.InvalidRngError):
    model.apply(variables, ids, deterministic=False)


def test_bad_shapes_are_reported():
  model = helpers.official_tiny_transformer()
  with pytest.raises(ValueError, match="exceeds max_position_embeddings 65"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 66), jnp.int32))
  with pytest.raises(ValueError, match="not divisible by num_heads 3"):
    model.clone(num_heads=3).init(jax.random.PRNGKey(0),
                                  jnp.zeros((1, 65), jnp.int32))
  with pytest.raises(ValueError, match="attention impl must be one of"):
    model.clone(attention_impl="flash").init(jax.random.PRNGKey(0),
                                             jnp.zeros((1, 65), jnp.int32))


# -- norm="pre": the prior's blocks, run bidirectionally ---------------------


def _pre_ln():
  return transformer_lib.Transformer(
      codebook_size=24, num_classes=5, hidden_size=32, num_layers=2,
      num_heads=2, mlp_dim=64, max_position_embeddings=17, norm="pre")


def test_pre_ln_is_bidirectional_and_its_params_are_sharded_by_name():
  model = _pre_ln()
  ids = _random_ids(model, length=17)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), ids)
  assert {"block_0", "final_ln", "Embed_0", "MlmLayer_0"} <= set(
      variables["params"])
  later = ids.at[:, -1].set((ids[:, -1] + 1) % model.codebook_size)
  first = jax.jit(lambda x: model.apply(variables, x)[:, 0])
  # The class token's logits see the last image token (no causal mask).
  assert not np.allclose(first(ids), first(later))
  ruled = {name for name, _ in common.LOGICAL_AXIS_RULES}
  for leaf in jax.tree_util.tree_leaves(
      variables["params"],
      is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)):
    assert set(leaf.names) <= ruled, leaf.names
  variables = nn.unbox(variables)
  apply = lambda m: jax.jit(m.apply)(variables, ids)  # pylint: disable=unnecessary-lambda-assignment
  np.testing.assert_allclose(apply(model.clone(remat=True)), apply(model),
                             atol=1e-6)


@pytest.mark.parametrize("change, message", [
    (dict(norm="sandwich"), "norm 'sandwich'"),
    (dict(attention_impl="xla"), "einsum attention"),
    (dict(dtype=jnp.bfloat16), "float32"),
])
def test_pre_ln_refuses_what_it_does_not_run(change, message):
  model = _pre_ln().clone(**change)
  with pytest.raises(ValueError, match=message):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 17), jnp.int32))


@pytest.mark.slow  # compiles a sharded training step
def test_pre_ln_with_a_skewed_mask_ratio_trains_the_same_sharded():
  from maskgit_jax.trainers import token_objectives  # pylint: disable=g-import-not-at-top
  model = _pre_ln()
  step = lambda shape, devices: th.objective_step(  # pylint: disable=g-long-lambda
      token_objectives.MVTM(model, mask_ratio="mar", label_dropout=0.25,
                            null_label=4), shape, devices)
  devices = jax.devices()
  reference, ref_metrics = step((1, 1, 1), devices[:1])
  state, metrics = step((2, 2, 2), devices)
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
      jax.device_get(state.params), jax.device_get(reference.params))
  assert ref_metrics["grad_norm"] > 0
  assert ref_metrics["masked_per_row"] >= 0.7 * 16
