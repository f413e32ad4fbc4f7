"""Sampler options of the parallel decode: reveal orders, filters, schedules."""

import dataclasses
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.decoding import guidance
from maskgit_jax.decoding import logit_filters
from maskgit_jax.decoding import parallel_decode
from maskgit_jax.decoding import remasking
from maskgit_jax.decoding import reveal_order
from maskgit_jax.models import transformer as transformer_lib
from tests import helpers

GRID = (4, 4)
MODEL = helpers.small_random_transformer(GRID)
LAYOUT = MODEL.layout
N = GRID[0] * GRID[1]


# -- Halton order -----------------------------------------------------------


@pytest.mark.parametrize("side", [8, 16, 24, 32, 48, 64])
def test_halton_order_is_a_permutation_of_the_grid(side):
  order = reveal_order.halton_order(side, side)
  np.testing.assert_array_equal(np.sort(order), np.arange(side * side))


def test_halton_order_starts_like_the_reference():
  # valeoai/Halton-MaskGIT, 16x16: (8,5), (4,10), (12,1), (2,7), (10,12), (6,3)
  expected = [(8, 5), (4, 10), (12, 1), (2, 7), (10, 12), (6, 3)]
  order = reveal_order.halton_order(16, 16)[:6]
  assert [(int(c) // 16, int(c) % 16) for c in order] == expected


def test_radical_inverse_first_values():
  np.testing.assert_allclose(reveal_order.radical_inverse([1, 2, 3], 2),
                             [0.5, 0.25, 0.75])
  np.testing.assert_allclose(reveal_order.radical_inverse([1, 2, 3], 3),
                             [1 / 3, 2 / 3, 1 / 9])


def _counts(num_iter, n, schedule="arccos"):
  revealed = [int(reveal_order.revealed_count(i, num_iter, jnp.array([n]),
                                              schedule)[0])
              for i in range(num_iter)]
  return np.diff([0] + revealed)


def test_reveal_counts_match_the_halton_reference():
  # 256 tokens in 32 steps (samplers_mage_notes.md, section 2.2).
  expected = [5, 5, 5, 5, 5, 5, 5, 6, 5, 5, 6, 5, 6, 5, 6, 6, 6, 6, 6, 7, 6,
              7, 7, 8, 8, 8, 9, 10, 11, 14, 17, 41]
  np.testing.assert_array_equal(_counts(32, 256), expected)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(side=st.integers(8, 64), num_iter=st.integers(1, 64),
                  schedule=st.sampled_from(["arccos", "cosine", "linear"]))
def test_reveal_counts_sum_to_the_grid_and_never_stall(side, num_iter,
                                                       schedule):
  counts = _counts(num_iter, side * side, schedule)
  assert counts.sum() == side * side
  assert (counts >= 1).all() if num_iter <= side * side else True


# -- the decode with a fixed order --------------------------------------------


def _decode(inputs, seed=0, **kwargs):
  params = helpers.init_params(MODEL, 1 + N, seed=1)
  return parallel_decode.decode(
      params, inputs, jax.random.PRNGKey(seed),
      tokens_to_logits=transformer_lib.CodebookLogits(MODEL),
      mask_token_id=LAYOUT.mask_id, **kwargs)


def _newly_known(state, mask_id):
  """bool [T, batch, length]: positions each step's output newly fixed."""
  known = np.concatenate([np.asarray(state.step_inputs)[1:],
                          np.asarray(state.final)[None]], 0) != mask_id
  before = np.asarray(state.step_inputs) != mask_id
  return known & ~before


@pytest.mark.slow  # trains or compiles for several seconds
def test_halton_decode_reveals_the_halton_slices_in_order():
  inputs = LAYOUT.masked_sequence(jnp.array([0, 2]), N)
  state = _decode(inputs, num_iter=5, order="halton", schedule="arccos")
  order = reveal_order.halton_order(*GRID)
  revealed = [int(reveal_order.revealed_count(i, 5, jnp.array([N]),
                                              "arccos")[0]) for i in range(5)]
  new = _newly_known(state, LAYOUT.mask_id)
  for i, (lo, hi) in enumerate(zip([0] + revealed[:-1], revealed)):
    for row in range(2):
      cells = np.flatnonzero(new[i, row, 1:])
      np.testing.assert_array_equal(np.sort(cells), np.sort(order[lo:hi]))


@pytest.mark.parametrize("order,roll", [("halton", False), ("halton", True),
                                        ("random", False)])
def test_fixed_orders_reveal_every_position_once_and_keep_known_tokens(
    order, roll):
  full = np.array(LAYOUT.masked_sequence(jnp.array([0, 1, 2]), N))
  # Row 2 is an edit: half of its image tokens are given.
  full[2, 1:9] = np.arange(8) % MODEL.codebook_size
  state = _decode(jnp.asarray(full), num_iter=6, order=order,
                  roll_order=roll, schedule="arccos")
  new = _newly_known(state, LAYOUT.mask_id)
  np.testing.assert_array_equal(new.sum(0), full == LAYOUT.mask_id)
  final = np.asarray(state.final)
  assert not (final == LAYOUT.mask_id).any()
  np.testing.assert_array_equal(final[2, :9], full[2, :9])
  # Sequences are fixed once revealed: a token never changes afterwards.
  seqs = np.asarray(state.sequences)
  for t in range(5):
    kept = np.asarray(state.step_inputs)[t + 1] != LAYOUT.mask_id
    np.testing.assert_array_equal(seqs[:, t][kept], final[kept])


def test_rolled_halton_orders_differ_between_rows():
  ranks = reveal_order.position_ranks("halton", jax.random.PRNGKey(0), 8,
                                      (8, 8), roll=True)
  assert len({tuple(np.asarray(r)) for r in ranks}) > 1
  np.testing.assert_array_equal(np.sort(np.asarray(ranks[:, 1:]), axis=1),
                                np.tile(np.arange(64.0), (8, 1)))


def test_unknown_order_is_reported():
  with pytest.raises(ValueError, match="order must be one of .*, got 'spiral'"):
    _decode(LAYOUT.masked_sequence(jnp.array([0]), N), num_iter=2,
            order="spiral")


# -- filters and temperature schedules ---------------------------------------

# float32 values without subnormals: XLA on CPU flushes those to zero, so a
# subnormal and 0 tie on the device (hypothesis found -4.2e-42 vs 0).
_logits = st.lists(st.floats(-5, 5, allow_nan=False, width=32,
                             allow_subnormal=False), min_size=2,
                   max_size=12).map(lambda v: np.asarray(v, np.float32))


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(logits=_logits, data=st.data())
def test_top_k_keeps_exactly_k_of_the_largest(logits, data):
  k = data.draw(st.integers(1, len(logits)))
  kept = np.isfinite(np.asarray(logit_filters.top_k_filter(logits, k)))
  assert kept.sum() == k
  assert logits[kept].min() >= logits[~kept].max(initial=-np.inf)


@pytest.mark.slow  # trains or compiles for several seconds
@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(logits=_logits, p=st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_set_with_that_mass(logits, p):
  kept = np.isfinite(np.asarray(logit_filters.top_p_filter(logits, p)))
  probs = np.asarray(jax.nn.softmax(logits))
  mass = probs[kept].sum()
  assert mass >= p - 1e-5 or kept.all()
  assert probs[kept].min() >= probs[~kept].max(initial=0.0)
  # Minimal: without its least likely member the set falls short of p.
  assert mass - probs[kept].min() < p + 1e-5


def test_temperature_schedules():
  at = [float(logit_filters.temperature_at(t, 5, 2.0, 0.0, "linear"))
        for t in range(5)]
  np.testing.assert_allclose(at, [2.0, 1.5, 1.0, 0.5, 1e-6], rtol=1e-6)
  assert float(logit_filters.temperature_at(3, 5, 2.0, 0.0, "constant")) == 2
  with pytest.raises(ValueError, match="temperature_schedule must be one of"):
    logit_filters.temperature_at(0, 5, 1.0, 1.0, "cosine")


def test_top_k_one_at_any_temperature_is_greedy():
  inputs = LAYOUT.masked_sequence(jnp.array([0, 1]), N)
  greedy = _decode(inputs, num_iter=4, greedy=True)
  top1 = _decode(inputs, num_iter=4, top_k=1, temperature=3.0)
  np.testing.assert_array_equal(top1.final, greedy.final)


# -- guidance schedules -------------------------------------------------------


@pytest.mark.parametrize("schedule", guidance.CFG_SCHEDULES)
def test_guidance_schedules_equal_their_closed_forms(schedule):
  w, p, share = 2.5, 3.0, np.array([0.25, 0.5])
  for k in range(8):
    progress = k / 8
    got = np.asarray(guidance.guidance_scale(
        schedule, w, progress=progress, decoded_share=share, power=p))
    expected = {"constant": w, "linear": w * share,
                "step_linear": w * progress,
                "power_cosine": w * (1 - math.cos(math.pi * progress ** p)) / 2
                }[schedule]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_guided_logits_get_the_decode_progress():
  def fake(params, ids):
    del params
    return jnp.broadcast_to(ids[:, :1, None].astype(jnp.float32),
                            ids.shape + (MODEL.codebook_size,))

  fn = guidance.GuidedLogits(fake, null_token=MODEL.codebook_size + 2,
                              mask_id=LAYOUT.mask_id, ramp="step_linear")
  assert fn.takes_progress
  ids = LAYOUT.masked_sequence(jnp.array([0]), N)
  out = fn({"model": None, "cfg_scale": 2.0}, ids, progress=0.5)
  cond, null = float(ids[0, 0]), float(fn.null_token)
  # w_t = 2.0 * 0.5 at progress 0.5.
  np.testing.assert_allclose(out[0, 0, 0], cond + 1.0 * (cond - null))


# -- compile once ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _CountingLogits:
  traces: list = dataclasses.field(default_factory=list, compare=False,
                                   hash=False)
  takes_progress: bool = True

  def __call__(self, params, ids, progress=None):
    self.traces.append(1)
    guided = guidance.GuidedLogits(transformer_lib.CodebookLogits(MODEL),
                                    null_token=MODEL.codebook_size + 2,
                                    mask_id=LAYOUT.mask_id,
                                    ramp="power_cosine")
    return guided(params, ids, progress=progress)


def _traced_options(i):
  """Options of run ``i``: the same names, other numbers."""
  halton = dict(order="halton", roll_order=True,
                temperature_schedule="linear", temperature=1.0 + i,
                final_temperature=0.1 * i, top_k=2 + i, top_p=0.5 + 0.1 * i)
  mdlm = dict(order="mdlm", remask="conf", remask_eta=0.01 * (i + 1))
  return halton, mdlm


@pytest.mark.parametrize("which", [0, 1])
def test_new_traced_options_do_not_compile_again(which):
  fn = _CountingLogits()
  params = helpers.init_params(MODEL, 1 + N, seed=0)
  inputs = LAYOUT.masked_sequence(jnp.array([0, 1]), N)
  for i in range(3):
    parallel_decode.decode(
        {"model": params, "cfg_scale": 1.0 + i, "cfg_power": 2.0 + i},
        inputs, jax.random.PRNGKey(i), tokens_to_logits=fn, num_iter=4,
        mask_token_id=LAYOUT.mask_id, **_traced_options(i)[which])
  assert len(fn.traces) == 1


# -- the options through DecodeOptions ---------------------------------------


@pytest.mark.parametrize("overrides,message", [
    (dict(order="spiral"), "order must be one of"),
    (dict(temperature_schedule="cosine"), "temperature_schedule must be one"),
    (dict(final_temperature=-1.0), "final_temperature must be >= 0"),
    (dict(top_k=-1), "top_k must be an integer >= 0"),
    (dict(top_k=2.5), "top_k must be an integer >= 0"),
    (dict(top_p=0.0), r"top_p must lie in \(0, 1\]"),
    (dict(cfg_schedule="cosine"), "cfg_schedule must be one of"),
    (dict(remask="cap"), "remask='cap' needs order='mdlm'"),
    (dict(order="mdlm", remask="loop"), "remask must be one of"),
    (dict(order="mdlm", remask_eta=-0.1), "remask_eta must be >= 0"),
])
def test_bad_sampler_options_are_named(overrides, message):
  from maskgit_jax.inference import options  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=message):
    options.DecodeOptions().replace(**overrides)


def test_filters_that_are_off_are_not_traced():
  from maskgit_jax.inference import options  # pylint: disable=g-import-not-at-top
  off = options.DecodeOptions().traced()
  assert off["top_k"] is None and off["top_p"] is None
  on = options.DecodeOptions(top_k=5, top_p=0.9).traced()
  assert int(on["top_k"]) == 5 and float(on["top_p"]) == pytest.approx(0.9)


# -- MDLM and ReMDM -------------------------------------------------------------


def test_remasking_sigmas_equal_their_closed_forms():
  alpha_t, alpha_s = jnp.array([[0.3], [0.8]]), jnp.array([[0.5], [0.9]])
  decoded = jnp.array([[True, False, True], [True, True, False]])
  scores = jnp.array([[1.0, 9.0, 2.0], [0.5, 0.5, 9.0]])
  ratio = (1 - np.asarray(alpha_s)) / np.asarray(alpha_t)
  cases = {"none": np.zeros_like(ratio), "cap": np.minimum(0.5, ratio),
           "rescale": 0.5 * np.minimum(1.0, ratio)}
  for name, row in cases.items():
    sig, masked = remasking.sigma(name, 0.5, alpha_t, alpha_s, scores,
                                  decoded)
    np.testing.assert_allclose(sig, np.where(decoded, row, 0.0), rtol=1e-6)
    np.testing.assert_allclose(masked, row, rtol=1e-6)
  sig, masked = remasking.sigma("conf", 0.5, alpha_t, alpha_s, scores,
                                decoded)
  np.testing.assert_allclose(np.asarray(sig).sum(-1),
                             np.minimum(1.0, ratio)[:, 0], rtol=1e-6)
  assert float(sig[0, 2]) > float(sig[0, 0])  # less confident: more likely
  assert float(sig[0, 1]) == 0 and not np.asarray(masked).any()


def test_unmask_probability():
  p = remasking.unmask_probability(jnp.array([[0.2]]), jnp.array([[0.6]]),
                                   0.0)
  np.testing.assert_allclose(p, [[0.5]], rtol=1e-6)  # (0.6 - 0.2) / 0.8
  p = remasking.unmask_probability(jnp.array([[0.9]]), jnp.array([[1.0]]),
                                   0.5)
  np.testing.assert_allclose(p, [[1.0]])  # the last step reveals all


@pytest.mark.parametrize("remask", ["none", "cap", "rescale", "conf"])
def test_mdlm_decodes_fully_and_keeps_given_tokens(remask):
  full = np.array(LAYOUT.masked_sequence(jnp.array([0, 1, 2]), N))
  full[2, 1:9] = np.arange(8) % MODEL.codebook_size
  state = _decode(jnp.asarray(full), num_iter=6, order="mdlm",
                  remask=remask, remask_eta=1.0, schedule="linear")
  final = np.asarray(state.final)
  assert not (final == LAYOUT.mask_id).any()
  np.testing.assert_array_equal(final[2, :9], full[2, :9])
  inputs = np.concatenate([np.asarray(state.step_inputs),
                           final[None]], 0)
  given = full != LAYOUT.mask_id
  np.testing.assert_array_equal(inputs[:, given], np.broadcast_to(
      full[given], (7, given.sum())))
  back = (inputs[:-1] != LAYOUT.mask_id) & (inputs[1:] == LAYOUT.mask_id)
  if remask == "none":  # MDLM never revisits a decoded token
    assert not back.any()
    for t in range(6):
      known = inputs[t] != LAYOUT.mask_id
      np.testing.assert_array_equal(inputs[t][known], final[known])
  else:  # eta = 1: tokens return to the mask
    assert back.any()



@hypothesis.settings(deadline=None, max_examples=10)
@hypothesis.given(seed=st.integers(0, 2**16), sampler=st.sampled_from(
    ("gumbel", "cdf")))
def test_min_p_draws_only_codes_near_the_most_likely(seed, sampler):
  """min_p=1 is greedy; min_p=0.3 never draws a code below 0.3 p_max."""
  logits = 2.0 * jax.random.normal(jax.random.PRNGKey(seed), (4, 9, 16))
  key = jax.random.PRNGKey(seed + 1)
  opts = parallel_decode.DecodeOptions(sampler=sampler)
  greedy = parallel_decode.draw(logits, key, 0, opts.replace(min_p=1.0))
  np.testing.assert_array_equal(greedy, jnp.argmax(logits, -1))
  probs = jax.nn.softmax(logits, -1)
  for k in range(5):
    ids = parallel_decode.draw(logits, jax.random.PRNGKey(k), 0,
                               opts.replace(min_p=0.3))
    chosen = jnp.take_along_axis(probs, ids[..., None], -1)[..., 0]
    assert (chosen >= 0.3 * probs.max(-1) - 1e-6).all()
