"""Token critics: training labels on a constructed batch, the loss by hand,
the critic module (own body or the generator's), and the decode's
``order="critic"``: every step re-masks exactly the tokens the critic rates
most likely sampled, accepted ones included; given tokens never change."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.objectives import mvtm
from maskgit_jax.decoding import parallel_decode
from maskgit_jax.objectives import token_critic
from maskgit_jax.models import critic as critic_lib
from maskgit_jax.models import transformer as transformer_lib

from tests import helpers

GRID = (4, 4)
N = GRID[0] * GRID[1]
MODEL = helpers.small_random_transformer(GRID)
LAYOUT = MODEL.layout


def test_labels_on_a_constructed_batch():
  real = jnp.array([[1, 2, 3, 4], [5, 6, 7, 8]])
  mask = jnp.array([[True, True, False, False], [False, True, True, True]])
  filled = jnp.array([[1, 9, 3, 4], [5, 0, 7, 2]])  # masked 1 and 7 refilled
  np.testing.assert_array_equal(                   # with the real token
      token_critic.targets(mask, real, filled, "resampled"),
      [[1, 1, 0, 0], [0, 1, 1, 1]])
  np.testing.assert_array_equal(
      token_critic.targets(mask, real, filled, "changed"),
      [[0, 1, 0, 0], [0, 1, 0, 1]])
  with pytest.raises(ValueError, match="critic label must be one of"):
    token_critic.targets(mask, real, filled, "fake")


def test_fill_masked_changes_only_masked_positions():
  rng = np.random.default_rng(0)
  inputs = rng.integers(0, 11, (3, 1 + N))
  inputs[:, 1::2] = LAYOUT.mask_id
  logits = jnp.asarray(rng.normal(size=(3, 1 + N, 11)), jnp.float32)
  filled = np.asarray(token_critic.fill_masked(
      jax.random.PRNGKey(0), jnp.asarray(inputs), logits, LAYOUT.mask_id))
  masked = inputs == LAYOUT.mask_id
  np.testing.assert_array_equal(filled[~masked], inputs[~masked])
  assert ((filled[masked] >= 0) & (filled[masked] < 11)).all()


def test_loss_equals_a_hand_computation():
  logits = jnp.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
  labels = jnp.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
  weights = jnp.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])  # class token out
  got, metrics = token_critic.loss(logits, labels, weights)
  x, y = np.array([-1.0, 0.5, 3.0, -2.0]), np.array([0.0, 1.0, 1.0, 0.0])
  bce = np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0) - x * y
  np.testing.assert_allclose(got, bce.mean(), rtol=1e-6)
  assert float(metrics["critic_accuracy"]) == 1.0  # every sign right
  assert float(metrics["sampled_share"]) == 0.5


def _critic_params(critic, seed=0):
  ids = jnp.zeros((1, 1 + N), jnp.int32)
  return nn.unbox(critic.init(jax.random.PRNGKey(seed), ids))["params"]


def test_critic_has_no_mlm_head_and_scores_every_token():
  critic = critic_lib.TokenCritic(MODEL)
  params = _critic_params(critic)
  assert set(params) == {"body", "head"}
  assert "MlmLayer_0" not in params["body"]
  ids = LAYOUT.masked_sequence(jnp.array([0, 2]), N)
  scores = critic_lib.CriticScores(critic)(params, ids)
  assert scores.shape == (2, 1 + N) and scores.dtype == jnp.float32


def test_self_critic_reads_the_generators_own_hidden_states():
  """The generator's params as the body (its MLM head unused)."""
  generator = helpers.init_params(MODEL, 1 + N, seed=3)
  critic = critic_lib.TokenCritic(MODEL)
  head = _critic_params(critic)["head"]
  ids = LAYOUT.masked_sequence(jnp.array([1]), N)
  got = critic.apply({"params": {"body": generator, "head": head}}, ids)
  hidden = MODEL.apply({"params": generator}, ids, hidden_only=True)
  want = hidden @ head["kernel"][:, 0] + head["bias"][0]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@dataclasses.dataclass(frozen=True)
class _TableCritic:
  """A critic whose logit is ``table[position, token]``: continuous, so no
  ties, and it depends on what was sampled."""

  def __call__(self, params, ids):
    return jnp.take_along_axis(params[None], ids[..., None].clip(0), -1)[..., 0]


def test_critic_order_re_masks_the_top_scored_tokens_each_step():
  params = helpers.init_params(MODEL, 1 + N, seed=1)
  rng = np.random.default_rng(1)
  table = jnp.asarray(rng.normal(size=(1 + N, LAYOUT.vocab_size)),
                      jnp.float32)
  inputs = np.array(LAYOUT.masked_sequence(jnp.array([0, 2]), N))
  inputs[1, 1:5] = [3, 4, 5, 6]  # an edit: these tokens are given
  num_iter = 6
  state = parallel_decode.decode(
      params, jnp.asarray(inputs), jax.random.PRNGKey(2),
      tokens_to_logits=transformer_lib.CodebookLogits(MODEL),
      num_iter=num_iter, choice_temperature=0.0, sampler="cdf",
      mask_token_id=LAYOUT.mask_id, order="critic",
      tokens_to_critic=_TableCritic(), critic_params=table)
  given = inputs != LAYOUT.mask_id
  n0 = (~given).sum(-1)
  revised = 0
  for t in range(num_iter - 1):
    sampled = np.asarray(state.sequences[:, t])
    nxt = np.asarray(state.step_inputs[t + 1])
    masked = nxt == LAYOUT.mask_id
    fake = np.asarray(_TableCritic()(table, jnp.asarray(sampled)))
    ratio = (t + 1) / num_iter
    for row in range(2):
      want_n = int(np.clip(np.floor(n0[row] * float(mvtm.schedule(
          jnp.float32(ratio), n0[row], "cosine"))), 1, n0[row] - 1))
      free = np.flatnonzero(~given[row])
      top = free[np.argsort(-fake[row, free])[:want_n]]
      np.testing.assert_array_equal(np.flatnonzero(masked[row]), np.sort(top))
      # Accepted tokens may return to the mask (Token-Critic's revision).
      was_open = np.asarray(state.step_inputs[t][row]) != LAYOUT.mask_id
      revised += int((was_open & masked[row] & ~given[row]).sum())
  final = np.asarray(state.final)
  np.testing.assert_array_equal(final[given], inputs[given])
  assert (final[:, 1:] < MODEL.codebook_size).all()
  assert revised > 0


def test_critic_params_are_traced_and_order_needs_a_critic():
  params = helpers.init_params(MODEL, 1 + N)
  inputs = LAYOUT.masked_sequence(jnp.array([0]), N)
  traces = []

  @dataclasses.dataclass(frozen=True)
  class Counting(_TableCritic):

    def __call__(self, p, ids):
      traces.append(1)
      return super().__call__(p, ids)

  for seed in range(2):
    table = jax.random.normal(jax.random.PRNGKey(seed),
                              (1 + N, LAYOUT.vocab_size))
    parallel_decode.decode(
        params, inputs, jax.random.PRNGKey(seed),
        tokens_to_logits=transformer_lib.CodebookLogits(MODEL), num_iter=3,
        mask_token_id=LAYOUT.mask_id, order="critic",
        tokens_to_critic=Counting(), critic_params=table)
  assert len(traces) == 1
  with pytest.raises(ValueError, match="order='critic' and tokens_to_critic"):
    parallel_decode.decode(
        params, inputs, jax.random.PRNGKey(0),
        tokens_to_logits=transformer_lib.CodebookLogits(MODEL), num_iter=3,
        mask_token_id=LAYOUT.mask_id, order="critic")


@pytest.mark.slow  # trains or compiles for several seconds
@pytest.mark.parametrize("self_critic", [False, True])
def test_critic_trains_on_a_frozen_generator_and_samples_with_it(
    imported, tmp_path, self_critic):
  """train.py's critic stage on the official tiny generator (imported), then
  the Generator decodes with ``order="critic"``."""
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import critic_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "tokens.npz",
           tokens=rng.integers(0, 64, (32, 2, 8, 8)).astype(np.int32),
           labels=np.arange(32) % 10, num_classes=10)
  config = critic_animal_mnist.get_config("tiny")
  config.critic.self_critic = self_critic
  config.generator_checkpoint = str(imported)
  config.data.name = f"tokens:{tmp_path / 'tokens.npz'}"
  metrics = loop.train_and_evaluate(config, tmp_path / "critic")
  assert np.isfinite(metrics["loss"])
  assert 0.0 <= metrics["critic_accuracy"] <= 1.0
  assert 0.0 < metrics["sampled_share"] < 1.0
  gen = sampling.Generator.from_checkpoint(imported, critic=tmp_path / "critic",
                                           batch_size=4)
  assert gen.critic.self_critic == self_critic
  samples = gen.sample([0, 3, 5], seed=1, order="critic", num_iter=4)
  assert samples.tokens.shape == (3, 8, 8)
  assert ((samples.tokens >= 0) & (samples.tokens < 64)).all()
  plain = sampling.Generator.from_checkpoint(imported)
  with pytest.raises(ValueError, match="needs a token critic"):
    plain.sample([0], order="critic")
