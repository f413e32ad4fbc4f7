"""Parallel decoding: official parity, invariants, compile-once."""

import dataclasses

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.objectives import mvtm
from maskgit_jax.decoding import parallel_decode
from maskgit_jax.decoding import tokens
from maskgit_jax.models import transformer as transformer_lib
from tests import helpers


def _official_decode(parity, inputs, key, **kwargs):
  model = helpers.official_tiny_transformer()
  return parallel_decode.decode(
      parity.params("transformer")["params"], inputs, jax.random.PRNGKey(key),
      tokens_to_logits=transformer_lib.CodebookLogits(model), num_iter=8,
      **kwargs)


def _assert_run(state, parity, name, start_iter=0):
  np.testing.assert_array_equal(state.sequences,
                                parity.io[f"{name}_final_seqs"])
  np.testing.assert_array_equal(state.step_inputs[start_iter:],
                                parity.io[f"{name}_step_inputs"])
  assert not (state.final == tokens.OFFICIAL_MASK_ID).any()


# The unrolled loop is another program for XLA; it must stay bit-exact.
unrolled = pytest.mark.parametrize("unroll", [False, True])


@unrolled
def test_greedy_generation_matches_official(parity, unroll):
  for key in (0, 123):  # the greedy runs do not depend on the key
    state = _official_decode(parity, parity.io["gen_input_ids"], key,
                             greedy=True, choice_temperature=0.0,
                             unroll=unroll)
    _assert_run(state, parity, "gen_greedy_t0")


@unrolled
def test_greedy_edit_matches_official(parity, unroll):
  state = _official_decode(parity, parity.io["edit_input_ids"], 0,
                           start_iter=2, greedy=True, choice_temperature=0.0,
                           unroll=unroll)
  _assert_run(state, parity, "edit_greedy_t0", start_iter=2)


@unrolled
def test_sampled_generation_matches_official(parity, legacy_threefry, unroll):
  del legacy_threefry
  state = _official_decode(parity, parity.io["gen_input_ids"], 42,
                           unroll=unroll)
  _assert_run(state, parity, "gen_sampled_key42")


@unrolled
def test_sampled_edit_matches_official(parity, legacy_threefry, unroll):
  del legacy_threefry
  state = _official_decode(parity, parity.io["edit_input_ids"], 7,
                           start_iter=2, unroll=unroll)
  _assert_run(state, parity, "edit_sampled_key7", start_iter=2)


@pytest.mark.parametrize("sampler", parallel_decode.SAMPLERS)
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_samplers_draw_from_the_tempered_distribution(sampler, temperature):
  probs = np.array([0.45, 0.3, 0.15, 0.07, 0.03, 0.0])
  with np.errstate(divide="ignore"):
    logits = np.log(probs).astype(np.float32) + 3.0  # any offset
  n = 200_000
  ids = parallel_decode.sample_tokens(
      jax.random.PRNGKey(1), jnp.broadcast_to(logits, (n, len(probs))),
      temperature, sampler=sampler)
  counts = np.bincount(np.asarray(ids), minlength=len(probs))
  tempered = probs ** (1 / temperature) / (probs ** (1 / temperature)).sum()
  sigma = np.sqrt(n * tempered * (1 - tempered))
  assert counts[-1] == 0  # probability 0 is never drawn
  np.testing.assert_array_less(np.abs(counts - n * tempered), 5 * sigma + 1)


def test_greedy_sampling_ignores_the_sampler():
  logits = jax.random.normal(jax.random.PRNGKey(0), (4, 9, 13))
  for sampler in parallel_decode.SAMPLERS:
    np.testing.assert_array_equal(
        parallel_decode.sample_tokens(jax.random.PRNGKey(1), logits, 1.0,
                                      greedy=True, sampler=sampler),
        jnp.argmax(logits, -1))


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1),
                  scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]))
def test_log_prob_of_is_log_softmax_bit_for_bit(seed, scale):
  keys = jax.random.split(jax.random.PRNGKey(seed))
  logits = scale * jax.random.normal(keys[0], (3, 7, 50))
  ids = jax.random.randint(keys[1], (3, 7), 0, 50)
  expected = jnp.take_along_axis(jax.nn.log_softmax(logits), ids[..., None],
                                 -1)[..., 0]
  np.testing.assert_array_equal(
      jax.jit(parallel_decode.log_prob_of)(logits, ids), expected)


def test_rng_primitives_match_official(parity, legacy_threefry):
  del legacy_threefry
  key = jax.random.PRNGKey(42)
  np.testing.assert_array_equal(jax.random.key_data(key),
                                parity.io["gen_rng_key42"])
  np.testing.assert_array_equal(jax.random.split(key),
                                parity.io["rng_check_split_key42"])
  np.testing.assert_array_equal(jax.random.gumbel(key, (2, 3)),
                                parity.io["rng_check_gumbel_key42_2x3"])


def test_mask_by_random_topk_matches_official(parity, legacy_threefry):
  del legacy_threefry
  io = parity.io
  log_probs = jnp.log(io["topk_probs"])
  key = jax.random.PRNGKey(0)
  for temperature, expected in ((0.0, "topk_temp0"),
                                (4.5, "topk_temp4p5_key0")):
    got = parallel_decode.mask_by_random_topk(key, io["topk_mask_len"],
                                              log_probs, temperature)
    np.testing.assert_array_equal(got, io[expected])
  # Without noise exactly mask_len positions are masked, never a known one.
  got = parallel_decode.mask_by_random_topk(key, io["topk_mask_len"],
                                            log_probs, 0.0)
  np.testing.assert_array_equal(np.asarray(got).sum(-1),
                                io["topk_mask_len"][:, 0])
  assert not np.asarray(got)[np.isinf(io["topk_probs"])].any()


# ---------------------------------------------------------------------------
# Invariants on random small models.

GRID = (3, 4)
MODEL = helpers.small_random_transformer(GRID)
LAYOUT = MODEL.layout


@hypothesis.settings(max_examples=20, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(
    seed=st.integers(0, 2**31 - 1),
    num_iter=st.sampled_from([1, 2, 5, 8]),
    start_frac=st.floats(0.0, 0.99),
    schedule=st.sampled_from(["cosine", "linear", "square", "log", "exp"]),
    greedy=st.booleans(),
    mask_prob=st.sampled_from([0.1, 0.5, 1.0]),
    sampler=st.sampled_from(parallel_decode.SAMPLERS),
    unroll=st.booleans())
@pytest.mark.slow  # trains or compiles for several seconds
def test_decode_invariants(seed, num_iter, start_frac, schedule, greedy,
                           mask_prob, sampler, unroll):
  keys = jax.random.split(jax.random.PRNGKey(seed), 5)
  params = helpers.init_params(MODEL, MODEL.max_position_embeddings,
                               seed=seed % 1000)
  batch, n = 3, GRID[0] * GRID[1]
  codes = jax.random.randint(keys[0], (batch, n), 0, LAYOUT.codebook_size)
  labels = jax.random.randint(keys[1], (batch,), 0, LAYOUT.num_classes)
  mask = jax.random.bernoulli(keys[2], mask_prob, (batch, n))
  inputs = np.asarray(LAYOUT.make_sequence(labels, codes, mask=mask))
  start_iter = int(start_frac * num_iter)
  state = parallel_decode.decode(
      params, inputs, keys[3], tokens_to_logits=transformer_lib.CodebookLogits(
          MODEL), num_iter=num_iter, start_iter=start_iter, schedule=schedule,
      greedy=greedy, choice_temperature=0.0 if greedy else 2.0,
      mask_token_id=LAYOUT.mask_id, sampler=sampler, unroll=unroll)
  final = np.asarray(state.final)
  steps = np.asarray(state.step_inputs)[start_iter:]
  unknown0 = inputs == LAYOUT.mask_id

  # Known tokens never change; the result holds only image codes there.
  np.testing.assert_array_equal(final[~unknown0], inputs[~unknown0])
  for step in steps:
    np.testing.assert_array_equal(step[~unknown0], inputs[~unknown0])
  assert (final[unknown0] < LAYOUT.codebook_size).all()
  assert not (final == LAYOUT.mask_id).any()

  # Mask counts follow the schedule and the clamp, iteration by iteration.
  n0 = unknown0.sum(-1)
  counts = (steps == LAYOUT.mask_id).sum(-1)  # [iters, batch]
  np.testing.assert_array_equal(counts[0], n0)
  for k in range(1, len(steps)):
    t = start_iter + k - 1  # the iteration that produced steps[k]
    ratio = np.float32(t + 1) / np.float32(num_iter)
    gamma = np.asarray(mvtm.schedule(ratio, n0, schedule))
    planned = np.floor(n0 * gamma)
    prev = counts[k - 1]
    expected = np.minimum(prev, np.maximum(1, np.minimum(prev - 1, planned)))
    np.testing.assert_array_equal(counts[k], expected, err_msg=f"t={t}")

  # Each initially masked position is revealed once and then stays put.
  history = np.concatenate([steps, final[None]], axis=0)
  revealed = history != LAYOUT.mask_id
  for b, pos in zip(*np.nonzero(unknown0)):
    column = revealed[:, b, pos]
    first = int(np.argmax(column))
    assert column[-1] and column[first:].all(), (b, pos, column)
    assert (history[first:, b, pos] == final[b, pos]).all()


@dataclasses.dataclass(frozen=True)
class _CountingLogits:
  """A tokens_to_logits that counts how often it is traced."""
  model: transformer_lib.Transformer
  traces: list = dataclasses.field(default_factory=list, compare=False,
                                   hash=False)

  def __call__(self, params, ids):
    self.traces.append(1)
    return transformer_lib.CodebookLogits(self.model)(params, ids)


def test_decode_compiles_once_for_new_params_and_inputs():
  fn = _CountingLogits(MODEL)
  n = GRID[0] * GRID[1]
  for seed in range(3):
    params = helpers.init_params(MODEL, 1 + n, seed=seed)
    inputs = LAYOUT.masked_sequence(jnp.array([seed % 3, 1]), n)
    parallel_decode.decode(params, inputs, jax.random.PRNGKey(seed),
                           tokens_to_logits=fn, num_iter=4,
                           start_iter=seed % 2, choice_temperature=1.0 + seed,
                           mask_token_id=LAYOUT.mask_id)
  assert len(fn.traces) == 1


def test_bad_arguments_are_reported():
  params = helpers.init_params(MODEL, MODEL.max_position_embeddings)
  inputs = LAYOUT.masked_sequence(jnp.array([0]), GRID[0] * GRID[1])
  fn = transformer_lib.CodebookLogits(MODEL)
  with pytest.raises(ValueError, match="num_iter must be a positive"):
    parallel_decode.decode(params, inputs, jax.random.PRNGKey(0),
                           tokens_to_logits=fn, num_iter=0)
  with pytest.raises(ValueError, match="sampler must be one of .*, got 'fast'"):
    parallel_decode.decode(params, inputs, jax.random.PRNGKey(0),
                           tokens_to_logits=fn, num_iter=2, sampler="fast")
  with pytest.raises(ValueError, match="unknown mask schedule 'cosin'"):
    parallel_decode.decode(params, inputs, jax.random.PRNGKey(0),
                           tokens_to_logits=fn, num_iter=2, schedule="cosin")
