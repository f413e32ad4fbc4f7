"""MAGE: the corruption, the model, the train step."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from maskgit_jax.objectives import mage_corruption
from maskgit_jax.models import mage as mage_lib
from maskgit_jax.trainers import token_objectives
from maskgit_jax.trainers import token_trainer
from tests import helpers
from tests import train_helpers as th

MODEL = mage_lib.MAGE(codebook_size=24, num_tokens=16, hidden_size=32,
                      encoder_layers=2, encoder_heads=4, decoder_size=32,
                      decoder_layers=1, decoder_heads=4, dropout_rate=0.0)
APPLY = helpers.jit_apply(MODEL)


def test_mask_ratio_is_the_references_truncated_normal():
  ratios = np.asarray(mage_corruption.mask_ratio(jax.random.PRNGKey(0),
                                              (20000,)))
  assert ratios.min() >= 0.5 and ratios.max() <= 1.0
  reference = stats.truncnorm(-0.2, 1.8, loc=0.55, scale=0.25)
  assert abs(ratios.mean() - reference.mean()) < 0.004  # about 0.694
  assert abs(ratios.std() - reference.std()) < 0.004
  assert stats.kstest(ratios, reference.cdf).pvalue > 1e-3


@settings(max_examples=10, deadline=None)
@given(length=st.sampled_from([4, 16, 64, 256]), seed=st.integers(0, 9999),
       ratio=st.floats(0.5, 1.0))
def test_dropped_tokens_are_masked_and_counts_are_exact(length, seed, ratio):
  mask, kept = mage_corruption.drop_and_mask(jax.random.PRNGKey(seed), 3,
                                          length, ratio)
  mask, kept = np.asarray(mask), np.asarray(kept)
  dropped = math.ceil(length * 0.5)
  assert kept.shape == (3, length - dropped)
  expected_masked = math.ceil(length * np.float32(ratio) - 1e-6)
  np.testing.assert_array_equal(mask.sum(1), expected_masked)
  for row in range(3):
    assert (np.diff(kept[row]) > 0).all()  # increasing, no repeats
    dropped_positions = np.setdiff1d(np.arange(length), kept[row])
    assert mask[row, dropped_positions].all()  # dropped is inside masked
    # The kept masked positions are the masked ones that are not dropped.
    assert mask[row, kept[row]].sum() == expected_masked - dropped


def test_per_sample_ratios():
  ratios = jnp.array([0.5, 0.75, 1.0])
  mask, _ = mage_corruption.drop_and_mask(jax.random.PRNGKey(1), 3, 16, ratios)
  np.testing.assert_array_equal(np.asarray(mask).sum(1), [8, 12, 16])


@pytest.fixture(scope="module")
def params():
  ids = jnp.zeros((1, 17), jnp.int32)
  return nn.unbox(MODEL.init(jax.random.PRNGKey(0), ids)["params"])


def _corrupted(seed, ratio=0.7):
  tokens = jax.random.randint(jax.random.PRNGKey(seed), (2, 16), 0, 24)
  mask, kept = mage_corruption.drop_and_mask(jax.random.PRNGKey(seed + 1), 2,
                                          16, ratio)
  return tokens, mage_lib.sequences(tokens, mask, MODEL.layout), mask, kept


@pytest.mark.slow  # trains or compiles for several seconds
def test_dropping_equals_removing_the_dropped_tokens(params):
  """With dropping, the encoder never sees the dropped tokens: changing
  them moves no logit; the kept ones do."""
  tokens, ids, mask, kept = _corrupted(3)
  np.testing.assert_array_equal(ids[:, 0], MODEL.class_id)
  np.testing.assert_array_equal(ids[:, 1:][mask], MODEL.layout.mask_id)
  base = APPLY({"params": params}, ids, kept)
  assert base.shape == (2, 16, 24)
  dropped = np.ones((2, 16), bool)
  dropped[np.arange(2)[:, None], np.asarray(kept)] = False
  # Dropped positions are masked, so write a code there: unseen.
  changed = jnp.where(jnp.concatenate([jnp.zeros((2, 1), bool),
                                       jnp.asarray(dropped)], 1), 5, ids)
  np.testing.assert_allclose(APPLY({"params": params}, changed, kept),
                             base, rtol=1e-6, atol=1e-6)
  visible_kept = np.asarray(kept)[0][~np.asarray(mask)[0, np.asarray(kept)[0]]]
  assert visible_kept.size, "the corruption must keep a visible token here"
  other = ids.at[0, 1 + visible_kept[0]].set(
      (ids[0, 1 + visible_kept[0]] + 1) % 24)
  assert not np.allclose(APPLY({"params": params}, other, kept), base)


def test_masked_positions_are_padded_with_the_class_output(params):
  """Every masked position enters the decoder as the [C] output, so two
  masked positions differ only by their decoder position embedding: with
  those equal, their logits are equal."""
  _, ids, mask, kept = _corrupted(5, ratio=1.0)
  same = jax.tree_util.tree_map(lambda x: x, params)  # a copy
  table = same["decoder_positions"]["embedding"]
  same["decoder_positions"]["embedding"] = jnp.broadcast_to(table[:1],
                                                            table.shape)
  logits = np.asarray(APPLY({"params": same}, ids, kept))
  np.testing.assert_allclose(logits[:, 1:], logits[:, :1].repeat(15, 1),
                             rtol=1e-5, atol=1e-5)
  # Without dropping (inference) the same holds for a fully masked grid.
  full = np.asarray(APPLY({"params": same}, ids))
  np.testing.assert_allclose(full[:, 1:], full[:, :1].repeat(15, 1),
                             rtol=1e-5, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 9999), ratio=st.floats(0.5, 1.0))
def test_decoder_input_is_class_padded_and_kept_in_place(seed, ratio):
  """Every masked position (kept or dropped) holds the [C] output; every
  kept visible position its own encoder output; nothing else."""
  mask, kept = mage_corruption.drop_and_mask(jax.random.PRNGKey(seed), 3, 16,
                                          ratio)
  h = jax.random.normal(jax.random.PRNGKey(seed + 1), (3, 1 + 8, 5))
  x = np.asarray(mage_lib.pad_with_class(h, kept, mask))
  h, mask, kept = np.asarray(h), np.asarray(mask), np.asarray(kept)
  assert x.shape == (3, 17, 5)
  for row in range(3):
    np.testing.assert_array_equal(x[row, 0], h[row, 0])
    for position in range(16):
      if mask[row, position]:
        expected = h[row, 0]
      else:  # visible tokens are never dropped
        expected = h[row, 1 + list(kept[row]).index(position)]
      np.testing.assert_array_equal(x[row, 1 + position], expected)


def test_features_pool_the_image_tokens(params):
  tokens = jax.random.randint(jax.random.PRNGKey(7), (3, 16), 0, 24)
  ids = mage_lib.sequences(tokens, jnp.zeros((3, 16), bool), MODEL.layout)
  feats = np.asarray(APPLY({"params": params}, ids, method="features"))
  assert feats.shape == (3, 32)
  np.testing.assert_allclose(feats.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(feats.std(-1), 1.0, atol=1e-3)
  # The probe's flattened features are these positions, before the pooling.
  positions = np.asarray(APPLY({"params": params}, ids, method="positions"))
  assert positions.shape == (3, 16, 32)
  pooled = positions.mean(1)
  pooled = (pooled - pooled.mean(-1, keepdims=True)) / np.sqrt(
      pooled.var(-1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(feats, pooled, rtol=1e-4, atol=1e-4)


def _one_step(mesh_shape, devices, per_sample):
  return th.objective_step(
      token_objectives.MAGE(MODEL, per_sample_ratio=per_sample),
      mesh_shape, devices)


@pytest.mark.slow  # trains or compiles for several seconds
@pytest.mark.parametrize("per_sample", [False, True])
def test_train_step_sharded_equals_one_device(per_sample):
  devices = jax.devices()
  reference, ref_metrics = _one_step((1, 1, 1), devices[:1], per_sample)
  assert np.isfinite(ref_metrics["loss"]) and ref_metrics["grad_norm"] > 0
  assert 8 <= ref_metrics["masked_per_row"] <= 16
  state, metrics = _one_step((2, 2, 2), devices, per_sample)
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
      jax.device_get(state.params), jax.device_get(reference.params))


@pytest.mark.slow  # trains or compiles for several seconds
def test_the_head_does_not_train_the_embedding(params):
  """The head reads the word embeddings with the gradient stopped (as the
  reference detaches them): on an all-masked input the code rows, used by
  the head only, get no gradient; the bias does."""
  tokens = jax.random.randint(jax.random.PRNGKey(9), (2, 16), 0, 24)
  ids = mage_lib.sequences(tokens, jnp.ones((2, 16), bool), MODEL.layout)

  def loss(p):
    logits = APPLY({"params": p}, ids)
    return jnp.mean(jax.nn.log_softmax(logits)[..., 0])
  grads = jax.grad(loss)(params)
  table = np.asarray(grads["word_embeddings"]["embedding"])
  np.testing.assert_array_equal(table[:24], 0.0)
  assert np.abs(table[24:]).sum() > 0  # [C] and mask rows, input side
  assert np.abs(np.asarray(grads["mlm_bias"])).sum() > 0


# -- the ratio ablation, the loss, the configs, the decode ------------------


def test_uniform_and_fixed_ratios():
  rng = jax.random.PRNGKey(2)
  uniform = np.asarray(mage_corruption.sample_ratio(rng, (20000,),
                                                 distribution="uniform"))
  assert uniform.min() >= 0.5 and uniform.max() <= 1.0
  assert abs(uniform.mean() - 0.75) < 0.004
  assert abs(uniform.std() - 0.5 / math.sqrt(12)) < 0.004
  assert stats.kstest(uniform, stats.uniform(0.5, 0.5).cdf).pvalue > 1e-3
  fixed = mage_corruption.sample_ratio(rng, (5,), distribution="fixed",
                                    fixed=0.6)
  np.testing.assert_array_equal(np.asarray(fixed), np.float32(0.6))
  with pytest.raises(ValueError, match="one of"):
    mage_corruption.sample_ratio(rng, distribution="cosine")
  with pytest.raises(ValueError, match=r"in \[0.5, 1.0\]"):
    token_objectives.MAGE(MODEL, ratio="fixed", fixed_ratio=0.4)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 9999))
def test_the_loss_ignores_visible_positions(seed):
  """The trainer's loss: whatever the logits and targets at visible
  positions, the loss is the same."""
  from maskgit_jax.objectives import mvtm  # pylint: disable=g-import-not-at-top
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  logits = jax.random.normal(keys[0], (3, 16, 24))
  targets = jax.random.randint(keys[1], (3, 16), 0, 24)
  mask, _ = mage_corruption.drop_and_mask(keys[2], 3, 16, 0.6)
  other_logits = jnp.where(mask[..., None], logits,
                           10 * jax.random.normal(keys[3], logits.shape))
  other_targets = jnp.where(mask, targets, (targets + 7) % 24)
  loss = lambda l, t: mvtm.mvtm_loss(logits=l, targets=t, mask=mask)[0]  # pylint: disable=unnecessary-lambda-assignment
  np.testing.assert_allclose(loss(other_logits, other_targets),
                             loss(logits, targets), rtol=1e-6)


@pytest.mark.parametrize("variant,width,depth,heads", [
    ("vit_base", 768, 12, 12), ("vit_large", 1024, 24, 16)])
def test_imagenet_configs_have_the_papers_sizes(variant, width, depth, heads):
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import mage_imagenet  # pylint: disable=g-import-not-at-top
  config = mage_imagenet.get_config(variant)
  model, _ = restore.mage_from_config(config)
  shapes = jax.eval_shape(
      lambda: nn.unbox(model.init(jax.random.PRNGKey(0),
                                  jnp.zeros((1, 257), jnp.int32))["params"]))
  blocks = lambda part: [k for k in shapes if k.startswith(part)  # pylint: disable=unnecessary-lambda-assignment
                         and k[len(part):].isdigit()]
  encoder, decoder = blocks("encoder_"), blocks("decoder_")
  assert len(encoder) == depth and len(decoder) == 8
  query = shapes["encoder_0"]["query"]["kernel"].shape
  assert query == (width, heads, width // heads)
  assert shapes["decoder_0"]["query"]["kernel"].shape == (
      width, 16, width // 16)
  assert shapes["word_embeddings"]["embedding"].shape == (1024 + 2, width)
  assert shapes["position_embeddings"]["embedding"].shape == (257, width)
  assert config.decode.num_iter == 20 and config.decode.choice_temperature == 6
  assert config.optimizer.b2 == 0.95 and config.optimizer.weight_decay == 0.05


def test_weight_decay_on_matrices_only():
  tx = token_trainer.make_optimizer(
      learning_rate=0.1, warmup_steps=0, total_steps=10, weight_decay=0.5,
      decay_matrices_only=True, grad_clip=None)
  params = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones((3,))}
  zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  assert np.all(np.asarray(updates["kernel"]) < 0)
  np.testing.assert_array_equal(np.asarray(updates["bias"]), 0.0)


def test_decode_logits_pad_the_class_position(params):
  _, ids, _, _ = _corrupted(4)
  logits = np.asarray(mage_lib.MAGELogits(MODEL)(params, ids))
  assert logits.shape == (2, 17, 24)
  np.testing.assert_array_equal(logits[:, 0], 0.0)
  np.testing.assert_allclose(logits[:, 1:],
                             MODEL.apply({"params": params}, ids), rtol=1e-6)


# ---------------------------------------------------------------------------
# MAGE-C: the projector and the contrastive term.

PROJECTED = MODEL.clone(projection_dim=8)
PROJECTED_APPLY = helpers.jit_apply(PROJECTED)


def test_the_projector_is_made_at_init_named_and_one_encoder_pass():
  from maskgit_jax.presets import common  # pylint: disable=g-import-not-at-top
  ids = jnp.zeros((1, 17), jnp.int32)
  boxed = PROJECTED.init(jax.random.PRNGKey(0), ids)["params"]
  assert {"projector_hidden", "projector_out"} <= set(boxed)
  assert "projector_hidden" not in MODEL.init(jax.random.PRNGKey(0), ids)[
      "params"]
  ruled = {name for name, _ in common.LOGICAL_AXIS_RULES}
  for leaf in jax.tree_util.tree_leaves(
      boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)):
    assert set(leaf.names) <= ruled, leaf.names
  params = nn.unbox(boxed)
  tokens, seq, _, kept = _corrupted(3)
  del tokens
  plain = PROJECTED_APPLY({"params": params}, seq, kept)
  logits, projection = PROJECTED_APPLY({"params": params}, seq, kept,
                                       project=True)
  np.testing.assert_array_equal(logits, plain)
  assert projection.shape == (2, 8) and projection.dtype == jnp.float32
  # The projection reads the pooled image positions of the encoder output.
  encoded = PROJECTED_APPLY({"params": params}, seq, kept, method="encode")
  hidden = jax.nn.gelu(encoded[:, 1:].mean(1) @ params["projector_hidden"][
      "kernel"] + params["projector_hidden"]["bias"], approximate=True)
  np.testing.assert_allclose(
      projection, hidden @ params["projector_out"]["kernel"] +
      params["projector_out"]["bias"], rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="no projector"):
    MODEL.apply({"params": nn.unbox(MODEL.init(jax.random.PRNGKey(0), ids)[
        "params"])}, seq, kept, project=True)


def test_the_contrastive_term_adds_its_weight_times_info_nce():
  from maskgit_jax.objectives import contrastive  # pylint: disable=g-import-not-at-top
  tokens = jax.random.randint(jax.random.PRNGKey(5), (4, 2, 16), 0, 24)
  params = nn.unbox(PROJECTED.init(jax.random.PRNGKey(0),
                                   jnp.zeros((1, 17), jnp.int32))["params"])
  rng = jax.random.PRNGKey(7)
  losses = {}
  for weight in (0.1, 0.3):
    objective = token_objectives.MAGE(PROJECTED, contrastive_weight=weight)
    assert objective.views == 2
    losses[weight] = jax.jit(objective.loss)(params, tokens, None, rng)
  (low, m_low), (high, m_high) = losses[0.1], losses[0.3]
  np.testing.assert_allclose(m_low["contrastive_loss"],
                             m_high["contrastive_loss"])
  np.testing.assert_allclose(high - low, 0.2 * m_low["contrastive_loss"],
                             rtol=1e-4)
  assert 0.0 <= float(m_low["contrastive_accuracy"]) <= 1.0
  # Both views are reconstructed: 2b rows, each masked on its own.
  objective = token_objectives.MAGE(PROJECTED, contrastive_weight=0.1)
  corrupt_rng, _ = jax.random.split(rng)
  both = jnp.concatenate([tokens[:, 0], tokens[:, 1]])
  ids, mask, kept = jax.jit(objective.corrupt)(both, corrupt_rng)
  np.testing.assert_allclose(m_low["masked_per_row"], mask.sum(-1).mean())
  # The pairs: row i of the first view against row i of the second (the
  # model has no dropout, so the training pass is this one).
  _, projection = PROJECTED_APPLY({"params": params}, ids, kept, project=True)
  want, _ = contrastive.info_nce(projection[:4], projection[4:], 0.1)
  np.testing.assert_allclose(m_low["contrastive_loss"], want, rtol=1e-5)
  with pytest.raises(ValueError, match=r"two views.*\(4, 16\)"):
    objective.loss(params, tokens[:, 0], None, rng)


def test_mage_c_settings_are_checked():
  with pytest.raises(ValueError, match="needs a projector"):
    token_objectives.MAGE(MODEL, contrastive_weight=0.1)
  with pytest.raises(ValueError, match="contrastive_temperature > 0"):
    token_objectives.MAGE(PROJECTED, contrastive_weight=0.1,
                          contrastive_temperature=0.0)
  assert token_objectives.MAGE(PROJECTED).views == 1  # a projector alone
