"""T-step confidence-based parallel decoding (paper Section 3.2).

:func:`decode` is a pure function, jitted once per shape, whose loop is a
``lax.fori_loop`` over a static number of iterations. At iteration ``t``
(``r = (t + 1) / T``):

1. predict: ``logits = tokens_to_logits(params, tokens)``;
2. draw every masked position (:func:`draw`: ``argmax(logits /
   temperature + Gumbel)``, or ``argmax(logits)`` in greedy mode, through
   the filters that are on); known tokens are kept;
3. confidence = ``log p(sampled)``; known tokens get ``+inf``;
4. the reveal policy (:mod:`maskgit_jax.decoding.reveal_policies`) picks what
   returns to the mask; officially the ``clip(floor(N0 * gamma(r)), 1,
   unknown - 1)`` least confident positions after adding
   ``choice_temperature * (1 - r)`` times Gumbel noise, with ``N0`` the
   initial number of masked tokens.

The options are one :class:`~maskgit_jax.decoding.decode_options.DecodeOptions`
(its defaults are the official settings).

The result is the sequence sampled at the last iteration (before its
re-masking). Random numbers are drawn in the official order
(``rng, sample_rng = split(rng)``, sample; ``rng, choice_rng = split(rng)``,
confidence noise) so that, with ``jax_threefry_partitionable`` False, sampled
runs reproduce the official implementation bit for bit.

Two options, measured in ``benchmarks/RESULTS.md``:

* ``sampler="cdf"`` draws each token by inverting the cumulative
  distribution with one uniform number per position instead of Gumbel-max
  with one per position *and code*: the same distribution from ``K`` times
  fewer random numbers (on CPU the Gumbel draw costs 20-40% of a forward
  pass per iteration, the inverse-CDF draw about 5%). Sampled runs then no
  longer match the official ones bit for bit (greedy runs still do); the
  presets choose it in their ``config.decode`` (the Generator's and the
  previews' defaults).
* ``unroll=True`` unrolls the T iterations into straight-line code
  (bit-identical results). On CPU it was no faster and compiled 2-3x
  slower; it is there for accelerators, where each while-loop iteration
  has a launch and synchronisation cost.

The model arrives as ``tokens_to_logits(params, tokens) -> [batch, length,
K]``: logits over the K ids that may be sampled (the image codebook). It must
be hashable and stable across calls (a module-level function or a frozen
dataclass, e.g. :class:`maskgit_jax.models.transformer.CodebookLogits`) and
takes ``params`` as an argument, so one compilation serves every call with
the same shapes.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.decoding import guidance
from maskgit_jax.decoding import logit_filters
from maskgit_jax.decoding import reveal_policies
from maskgit_jax.decoding.decode_options import DecodeOptions, ORDERS, SAMPLERS  # pylint: disable=unused-import
from maskgit_jax.decoding.reveal_policies import mask_by_random_topk, mask_lowest, num_to_mask  # pylint: disable=unused-import
from maskgit_jax.decoding.tokens import OFFICIAL_MASK_ID

TokensToLogits = Callable[[object, jax.Array], jax.Array]

CONFIDENCE_OF_KNOWN_TOKENS = reveal_policies.KNOWN

@flax.struct.dataclass
class DecodeState:
  """The loop carry of :func:`decode`; fixed shapes throughout.

  Attributes:
    tokens: int32 ``[batch, length]``: the next transformer input (masked
      positions hold the mask id). After the loop: the last iteration's
      input re-masked; use :attr:`final` for the result.
    rng: the PRNG key for the next iteration.
    sequences: int32 ``[batch, num_iter, length]``: ``sequences[:, t]`` is
      what iteration t sampled, before re-masking (the official
      ``final_seqs``). Slots before ``start_iter`` hold the input. Without
      ``keep_history``: ``[batch, 1, length]``, the last samples.
    step_inputs: int32 ``[num_iter, batch, length]``: what the transformer saw
      at iteration t (slots before ``start_iter`` hold the input); None
      without ``keep_history``.
    policy: the reveal policy's carry (:mod:`maskgit_jax.decoding.reveal_policies`;
      for ``order="mdlm"`` each decoded token's negative log-probability).
  """

  tokens: jax.Array
  rng: jax.Array
  sequences: jax.Array
  step_inputs: jax.Array | None = None
  policy: Any = None

  @property
  def final(self) -> jax.Array:
    """int32 ``[batch, length]``: the decoded sequence, free of mask ids."""
    return self.sequences[:, -1]



def sample_tokens(rng: jax.Array, logits: jax.Array, temperature, *,
                  greedy: bool = False, sampler: str = "gumbel") -> jax.Array:
  """Draws one id per position from ``softmax(logits / temperature)``.

  Args:
    rng: PRNG key.
    logits: float32 ``[..., K]``.
    temperature: positive scalar (ignored when greedy).
    greedy: take ``argmax(logits)`` instead of sampling.
    sampler: ``"gumbel"``: ``argmax(logits / temperature + Gumbel)`` with one
      noise value per position and id (the official draw, reproducible bit
      for bit); ``"cdf"``: the first id whose cumulative probability exceeds
      one uniform number per position (the same distribution, ``K`` times
      fewer random numbers).

  Returns:
    int32 ``[...]`` ids in ``[0, K)``.
  """
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  if sampler == "gumbel":
    gumbel = jax.random.gumbel(rng, logits.shape, dtype=jnp.float32)
    return jnp.argmax(logits / temperature + gumbel, axis=-1).astype(jnp.int32)
  if sampler != "cdf":
    raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
  cdf = jnp.cumsum(jax.nn.softmax(logits / temperature, axis=-1), axis=-1)
  # Scaling by the total keeps u below cdf[-1] despite rounding in the sum.
  u = jax.random.uniform(rng, logits.shape[:-1] + (1,)) * cdf[..., -1:]
  ids = jnp.sum(cdf <= u, axis=-1, dtype=jnp.int32)
  return jnp.minimum(ids, logits.shape[-1] - 1)


def log_prob_of(logits: jax.Array, ids: jax.Array) -> jax.Array:
  """``log_softmax(logits)[ids]`` without materialising ``[..., K]`` log-probs.

  Computed as ``(x - max) - log(sum(exp(x - max)))``, the order of
  ``jax.nn.log_softmax``, so the values are the same bit for bit.

  Args:
    logits: float32 ``[..., K]``.
    ids: int ``[...]``.

  Returns:
    float32 ``[...]``.
  """
  shifted = logits - jnp.max(logits, axis=-1, keepdims=True)
  log_total = jnp.log(jnp.sum(jnp.exp(shifted), axis=-1))
  return jnp.take_along_axis(shifted, ids[..., None], axis=-1)[..., 0] - log_total


def decode(params, inputs: jax.Array, rng: jax.Array, *,
           tokens_to_logits: TokensToLogits,
           mask_token_id: int = OFFICIAL_MASK_ID,
           options: DecodeOptions | None = None,
           tokens_to_critic: TokensToLogits | None = None,
           critic_params=None, keep_history: bool = True,
           **option_values) -> DecodeState:
  """Iterative parallel decoding from a partially masked sequence.

  Args:
    params: the model parameters handed to ``tokens_to_logits``.
    inputs: int ``[batch, length]``; positions equal to ``mask_token_id`` are
      generated, every other token is kept. Generation starts from
      ``[class token, mask, ..., mask]``; editing from a partly masked grid.
    rng: PRNG key, used directly for the first iteration (not split first).
    tokens_to_logits: ``(params, tokens [batch, length]) -> logits [batch,
      length, K]`` over the K ids that may be sampled. Static: must hash.
      One with a true ``takes_progress`` attribute is called with
      ``progress=t / T`` (:class:`maskgit_jax.decoding.guidance.GuidedLogits`).
    mask_token_id: the id marking unknown tokens in ``inputs`` and written at
      re-masked positions (official -1; the transformer accepts -1 and its
      ``vocab_size - 1`` alike).
    options: a :class:`~maskgit_jax.decoding.decode_options.DecodeOptions` (default:
      the official settings), updated by ``option_values``.
    tokens_to_critic, critic_params: for ``order="critic"`` (see
      :class:`maskgit_jax.decoding.reveal_policies.Critic`).
    keep_history: keep every step's samples and inputs
      (``sequences``, ``step_inputs``); otherwise only the last samples.
    **option_values: any :class:`DecodeOptions` field by name (``num_iter``,
      ``choice_temperature``, ``schedule``, ...: the official keywords);
      traced fields may be traced values. ``None`` keeps the default.

  Returns:
    The final :class:`DecodeState`; ``state.final`` is the result.
  """
  opts = (options or DecodeOptions()).with_values(**option_values).validate()
  static, traced = opts.split()
  return _decode(params, inputs, rng, traced, critic_params, options=static,
                 tokens_to_logits=tokens_to_logits,
                 mask_token_id=mask_token_id,
                 tokens_to_critic=tokens_to_critic, keep_history=keep_history)


def decode_rows(params, sequences: jax.Array, keys: jax.Array,
                options: DecodeOptions, *, tokens_to_logits: TokensToLogits,
                mask_token_id: int, null_token: int | None = None,
                tokens_to_critic: TokensToLogits | None = None,
                critic_params=None) -> jax.Array:
  """int32 ``[n, L]`` decoded sequences, row ``i`` alone with its own key.

  What the Generator and the training previews both run, so that the same
  options, keys and params give the same samples whatever the batch:
  ``keys`` uint32 ``[n, 2]`` (:func:`row_keys`), classifier-free guidance
  when ``options.guided`` (``null_token``: the unconditional class token;
  see :class:`maskgit_jax.decoding.guidance.GuidedLogits`). The step history is not
  kept.
  """
  logits_fn, model_params = tokens_to_logits, params
  if options.guided:
    if null_token is None:
      raise ValueError("guidance (cfg_scale != 0) needs the null class "
                       "token of a model trained with label dropout")
    logits_fn = guidance.GuidedLogits(tokens_to_logits, null_token=null_token,
                                      mask_id=mask_token_id,
                                      ramp=options.cfg_schedule)
    model_params = {"model": params, "cfg_scale": options.cfg_scale,
                    "cfg_power": options.cfg_power}

  def one(sequence, key):
    return decode(model_params, sequence[None], key,
                  tokens_to_logits=logits_fn, mask_token_id=mask_token_id,
                  options=options, tokens_to_critic=tokens_to_critic,
                  critic_params=critic_params, keep_history=False).final[0]

  return jax.vmap(one)(sequences, keys)


@jax.jit
def _fold_rows(base, rows):
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(rows)


@jax.jit
def _seed_rows(seed, rows):
  return _fold_rows(jax.random.PRNGKey(seed), rows)


def row_keys(seed: int, rows: np.ndarray) -> jax.Array:
  """uint32 ``[n, 2]`` raw keys ``fold_in(PRNGKey(seed), rows[i])``.

  One compiled program per call (an eager ``PRNGKey`` and ``vmap`` cost a
  few ms, a sixth of a small model's batch-1 sample); seeds outside the
  int32 range take the eager ``PRNGKey``.
  """
  if -2**31 <= seed < 2**31:
    return _seed_rows(np.int32(seed), rows)
  return _fold_rows(jax.random.PRNGKey(seed), rows)


def draw(logits: jax.Array, rng: jax.Array, t, opts: DecodeOptions
         ) -> jax.Array:
  """int32 ``[b, L]``: every position drawn from float32 ``logits``
  ``[b, L, K]`` at step ``t``'s temperature, through the top-k/top-p
  filters that are on."""
  temperature = opts.temperature
  if opts.temperature_schedule != "constant":
    temperature = logit_filters.temperature_at(
        t, opts.num_iter, opts.temperature, opts.final_temperature,
        opts.temperature_schedule)
  top_k = opts.top_k if opts.filter_on("top_k") else None
  top_p = opts.top_p if opts.filter_on("top_p") else None
  if top_k is None and top_p is None and not opts.filter_on("min_p"):
    return sample_tokens(rng, logits, temperature, greedy=opts.greedy,
                         sampler=opts.sampler)
  filtered = logit_filters.filter_logits(logits / temperature, top_k, top_p)
  if opts.filter_on("min_p"):  # p >= min_p * p_max, in log space
    cut = jnp.max(filtered, axis=-1, keepdims=True) + jnp.log(opts.min_p)
    filtered = jnp.where(filtered >= cut, filtered, -jnp.inf)
  return sample_tokens(rng, filtered, 1.0, greedy=opts.greedy,
                       sampler=opts.sampler)


@functools.partial(
    jax.jit, static_argnames=("options", "tokens_to_logits", "mask_token_id",
                              "tokens_to_critic", "keep_history"))
def _decode(params, inputs, rng, traced, critic_params, *,
            options: DecodeOptions, tokens_to_logits, mask_token_id: int,
            tokens_to_critic, keep_history: bool) -> DecodeState:
  """:func:`decode` with ``options``' static fields fixed and its traced
  ones (``traced``, filters that are off as None) as arguments."""
  opts = options.with_traced(traced)
  num_iter = opts.num_iter
  inputs = inputs.astype(jnp.int32)
  batch, length = inputs.shape
  initial_unknown = jnp.sum(inputs == mask_token_id, axis=-1)
  given = inputs != mask_token_id  # the class token and edited context
  policy = reveal_policies.make_policy(
      opts, inputs, rng, tokens_to_critic=tokens_to_critic,
      critic_params=critic_params)

  def body(t, state: DecodeState) -> DecodeState:
    tokens = state.tokens
    if getattr(tokens_to_logits, "takes_progress", False):
      logits = tokens_to_logits(params, tokens, progress=t / num_iter)
    else:
      logits = tokens_to_logits(params, tokens)
    logits = logits.astype(jnp.float32)
    rng, sample_rng = jax.random.split(state.rng)
    unknown = tokens == mask_token_id
    sampled = jnp.where(unknown, draw(logits, sample_rng, t, opts), tokens)
    # log p(sampled) under the untempered model, +inf where the token is known.
    confidence = jnp.where(
        unknown, log_prob_of(logits, jnp.where(unknown, sampled, 0)),
        reveal_policies.KNOWN)
    rng, choice_rng = jax.random.split(rng)
    remask_now, carry = policy.remask(reveal_policies.Step(
        t=t, ratio=(t + 1).astype(jnp.float32) / num_iter, tokens=tokens,
        sampled=sampled, unknown=unknown, given=given, confidence=confidence,
        initial_unknown=initial_unknown, rng=choice_rng), state.policy)
    slot = t if keep_history else 0
    return DecodeState(
        tokens=jnp.where(remask_now, mask_token_id, sampled), rng=rng,
        sequences=state.sequences.at[:, slot].set(sampled),
        step_inputs=(state.step_inputs.at[t].set(tokens) if keep_history
                     else None),
        policy=carry)

  steps = num_iter if keep_history else 1
  init = DecodeState(
      tokens=inputs, rng=rng,
      sequences=jnp.broadcast_to(inputs[:, None], (batch, steps, length)),
      step_inputs=(jnp.broadcast_to(inputs[None], (num_iter, batch, length))
                   if keep_history else None),
      policy=policy.init())
  start_iter = jnp.asarray(opts.start_iter, jnp.int32)
  if not opts.unroll:
    return jax.lax.fori_loop(start_iter, num_iter, body, init)
  state = init
  for t in range(num_iter):
    t = jnp.int32(t)
    state = jax.lax.cond(t >= start_iter, body, lambda _, s: s, t, state)
  return state
