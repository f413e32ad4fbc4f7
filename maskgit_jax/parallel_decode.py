"""T-step confidence-based parallel decoding (paper Section 3.2).

:func:`decode` is a pure function, jitted once per shape, whose loop is a
``lax.fori_loop`` over a static number of iterations. At iteration ``t``
(``r = (t + 1) / T``):

1. predict: ``logits = tokens_to_logits(params, tokens)``;
2. sample every masked position (``argmax(logits / temperature + Gumbel)``,
   or ``argmax(logits)`` in greedy mode); known tokens are kept;
3. confidence = ``log p(sampled)`` plus ``choice_temperature * (1 - r)``
   times Gumbel noise; known tokens get ``+inf``;
4. re-mask the ``clip(floor(N0 * gamma(r)), 1, unknown - 1)`` least
   confident positions, with ``N0`` the initial number of masked tokens.

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
  :class:`maskgit_jax.sampling.Generator` uses it by default.
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
from typing import Callable

import flax.struct
import jax
import jax.numpy as jnp

from maskgit_jax import logit_filters
from maskgit_jax import masking
from maskgit_jax import remasking
from maskgit_jax import reveal_order
from maskgit_jax.tokens import OFFICIAL_MASK_ID

TokensToLogits = Callable[[object, jax.Array], jax.Array]

CONFIDENCE_OF_KNOWN_TOKENS = jnp.inf
# fold_in constant of the key that draws a random reveal order (the
# official key stream is left as it is).
_ORDER_KEY = 0x0D3E


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
      ``final_seqs``). Slots before ``start_iter`` hold the input.
    step_inputs: int32 ``[num_iter, batch, length]``: what the transformer saw
      at iteration t. Slots before ``start_iter`` hold the input.
    scores: float32 ``[batch, length]``: for ``order="mdlm"``, each decoded
      token's negative log-probability when it was drawn (what ReMDM's
      ``"conf"`` re-masks by); None otherwise.
  """

  tokens: jax.Array
  rng: jax.Array
  sequences: jax.Array
  step_inputs: jax.Array
  scores: jax.Array | None = None

  @property
  def final(self) -> jax.Array:
    """int32 ``[batch, length]``: the decoded sequence, free of mask ids."""
    return self.sequences[:, -1]


def mask_by_random_topk(rng: jax.Array, mask_len: jax.Array,
                        log_confidence: jax.Array,
                        temperature) -> jax.Array:
  """Marks the ``mask_len`` least confident positions of each row.

  Args:
    rng: key for the Gumbel noise.
    mask_len: int or float ``[batch, 1]``: how many positions to mask.
    log_confidence: float ``[batch, length]``: log-probabilities; ``+inf``
      for positions that must never be masked.
    temperature: scale of the Gumbel noise added to the confidence (0: none).

  Returns:
    bool ``[batch, length]``: True at positions to mask. Ties at the cut-off
    are left unmasked, as in the official code.
  """
  confidence = log_confidence + temperature * jax.random.gumbel(
      rng, log_confidence.shape, dtype=jnp.float32)
  return mask_lowest(mask_len, confidence)


def mask_lowest(mask_len: jax.Array, score: jax.Array) -> jax.Array:
  """bool ``[batch, length]``: the ``mask_len`` (``[batch, 1]``) positions of
  lowest ``score`` per row; ties at the cut-off stay unmasked and ``+inf``
  is never masked."""
  cut_off = jnp.take_along_axis(jnp.sort(score, axis=-1),
                                mask_len.astype(jnp.int32), axis=-1)
  return score < cut_off


def num_to_mask(initial_unknown: jax.Array, unknown: jax.Array, ratio,
                schedule: str) -> jax.Array:
  """How many tokens to re-mask after an iteration.

  Args:
    initial_unknown: int ``[batch]``: masked tokens in the decode's input (N0).
    unknown: int ``[batch]``: masked tokens in this iteration's input.
    ratio: float32 scalar: ``(t + 1) / T``.
    schedule: the mask schedule name.

  Returns:
    float32 ``[batch, 1]``: ``max(1, min(unknown - 1, floor(N0 * gamma(r))))``.
  """
  mask_ratio = masking.schedule(ratio, initial_unknown, schedule)
  mask_len = jnp.floor(initial_unknown * mask_ratio)[:, None]
  return jnp.maximum(1, jnp.minimum(unknown[:, None] - 1, mask_len))


ORDERS = reveal_order.ORDERS + ("mdlm", "critic")
"""``order`` values: the confidence and fixed orders, the masked-diffusion
posterior (:mod:`maskgit_jax.remasking`) and a token critic's choice
(:mod:`maskgit_jax.token_critic`)."""

SAMPLERS = ("gumbel", "cdf")
"""Token samplers: official Gumbel-max, or inverse-CDF (one uniform per token)."""


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


@functools.partial(
    jax.jit,
    static_argnames=("tokens_to_logits", "num_iter", "schedule", "greedy",
                     "mask_token_id", "sampler", "unroll", "order",
                     "roll_order", "temperature_schedule", "remask",
                     "tokens_to_critic"))
def decode(params, inputs: jax.Array, rng: jax.Array, *,
           tokens_to_logits: TokensToLogits, num_iter: int,
           start_iter=0, choice_temperature=4.5, temperature=1.0,
           schedule: str = "cosine", greedy: bool = False,
           mask_token_id: int = OFFICIAL_MASK_ID, sampler: str = "gumbel",
           unroll: bool = False, order: str = "confidence",
           roll_order: bool = False, temperature_schedule: str = "constant",
           final_temperature=1.0, top_k=None, top_p=None,
           remask: str = "none", remask_eta=0.05,
           tokens_to_critic: TokensToLogits | None = None,
           critic_params=None) -> DecodeState:
  """Iterative parallel decoding from a partially masked sequence.

  Args:
    params: the model parameters handed to ``tokens_to_logits``.
    inputs: int ``[batch, length]``; positions equal to ``mask_token_id`` are
      generated, every other token is kept. Generation starts from
      ``[class token, mask, ..., mask]``; editing from a partly masked grid.
    rng: PRNG key, used directly for the first iteration (not split first).
    tokens_to_logits: ``(params, tokens [batch, length]) -> logits [batch,
      length, K]`` over the K ids that may be sampled. Static: must hash.
    num_iter: T, the total number of iterations of the schedule (static).
    start_iter: first iteration to run (0 for generation; the official
      editing demo starts at 2 of 12); may be traced.
    choice_temperature: tau of the Gumbel noise on the confidence, annealed
      as ``tau * (1 - r)`` (official default 4.5; 0 for a deterministic
      choice).
    temperature: sampling temperature of the token logits (ignored when
      greedy).
    schedule: mask schedule name, see :func:`maskgit_jax.masking.schedule`.
    greedy: sample by ``argmax`` instead of from the distribution.
    mask_token_id: the id marking unknown tokens in ``inputs`` and written at
      re-masked positions (official -1 by default; the transformer accepts
      -1 and its ``vocab_size - 1`` alike).
    sampler: ``"gumbel"`` (official, bit-exact) or ``"cdf"`` (the same
      distribution from far fewer random numbers); see :func:`sample_tokens`.
    unroll: unroll the loop (faster steps, compile time grows with T);
      iterations before ``start_iter`` are then skipped by a ``lax.cond``.
    order: which masked positions are kept at each step (static; see
      :mod:`maskgit_jax.reveal_order`): ``"confidence"`` (official: the
      most confident samples, with Gumbel noise of ``choice_temperature``),
      ``"halton"`` (Halton-MaskGIT's spread-out fixed order) or
      ``"random"``; the fixed orders reveal ``R_i`` positions by step ``i``
      from ``schedule`` (``"arccos"`` is the Halton reference's count) and
      ignore ``choice_temperature``.
    roll_order: roll the Halton order by a random offset per row (the
      reference's ``randomize=True``).
    temperature_schedule: ``"constant"`` (official) or ``"linear"`` from
      ``temperature`` to ``final_temperature`` (traced) over the steps; see
      :mod:`maskgit_jax.logit_filters`.
    top_k, top_p: sample among the ``top_k`` most likely ids, or the
      smallest set with mass ``>= top_p`` (traced; None: off).
    remask: with ``order="mdlm"`` (the masked-diffusion posterior: each
      masked token is revealed with the schedule's probability instead of
      a fixed count), how decoded tokens return to the mask: ``"none"``
      (MDLM), ``"cap"``, ``"rescale"`` or ``"conf"`` (ReMDM); scaled by
      ``remask_eta`` (traced). See :mod:`maskgit_jax.remasking`.
    tokens_to_critic, critic_params: for ``order="critic"``: ``(critic_params,
      tokens [batch, length]) -> logits [batch, length]``, high where a
      token looks sampled (static, hashable; e.g.
      :class:`maskgit_jax.models.critic.CriticScores`). After each step's
      draw every generated token competes, given ones excepted: the
      ``clip(floor(N0 * gamma(r)), 1, N0 - 1)`` with the highest critic
      logit (plus Gumbel noise of ``choice_temperature * (1 - r)``) return
      to the mask, accepted tokens included (Token-Critic).

  Any ``tokens_to_logits`` with a true ``takes_progress`` attribute is
  called as ``tokens_to_logits(params, tokens, progress=t / T)`` (the
  guidance schedules of :mod:`maskgit_jax.guidance`).

  Returns:
    The final :class:`DecodeState`; ``state.final`` is the result.
  """
  if num_iter < 1:
    raise ValueError(f"num_iter must be a positive integer, got {num_iter}")
  if sampler not in SAMPLERS:
    raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
  if order not in ORDERS:
    raise ValueError(f"unknown order {order!r}; expected one of {ORDERS}")
  if remask not in remasking.REMASK_STRATEGIES:
    raise ValueError(f"unknown remask {remask!r}; expected one of "
                     f"{remasking.REMASK_STRATEGIES}")
  if remask != "none" and order != "mdlm":
    raise ValueError(f"remask={remask!r} needs order='mdlm', got {order!r}")
  if (order == "critic") != (tokens_to_critic is not None):
    raise ValueError("order='critic' and tokens_to_critic go together; got "
                     f"order={order!r} with tokens_to_critic="
                     f"{tokens_to_critic!r}")
  masking.validate_schedule(schedule)
  inputs = inputs.astype(jnp.int32)
  batch, length = inputs.shape
  initial_unknown = jnp.sum(inputs == mask_token_id, axis=-1)
  given = inputs != mask_token_id  # the class token and edited context
  ranks = None
  if order in reveal_order.FIXED_ORDERS:
    side = int(round((length - 1) ** 0.5))
    if side * side != length - 1:
      raise ValueError(f"order {order!r} needs a square grid after the class "
                       f"token, got length {length}")
    ranks = reveal_order.position_ranks(
        order, jax.random.fold_in(rng, _ORDER_KEY), batch, (side, side),
        roll=roll_order)

  def body(t, state: DecodeState) -> DecodeState:
    tokens = state.tokens
    if getattr(tokens_to_logits, "takes_progress", False):
      logits = tokens_to_logits(params, tokens, progress=t / num_iter)
    else:
      logits = tokens_to_logits(params, tokens)
    logits = logits.astype(jnp.float32)
    rng, sample_rng = jax.random.split(state.rng)
    step_temperature = temperature
    if temperature_schedule != "constant":
      step_temperature = logit_filters.temperature_at(
          t, num_iter, temperature, final_temperature, temperature_schedule)
    if top_k is None and top_p is None:
      sampled = sample_tokens(sample_rng, logits, step_temperature,
                              greedy=greedy, sampler=sampler)
    else:
      filtered = logit_filters.filter_logits(logits / step_temperature,
                                             top_k, top_p)
      sampled = sample_tokens(sample_rng, filtered, 1.0, greedy=greedy,
                              sampler=sampler)
    unknown = tokens == mask_token_id
    sampled = jnp.where(unknown, sampled, tokens)

    # log p(sampled) under the untempered model, +inf where the token is known.
    confidence = log_prob_of(logits, jnp.where(unknown, sampled, 0))
    confidence = jnp.where(unknown, confidence, CONFIDENCE_OF_KNOWN_TOKENS)

    ratio = (t + 1).astype(jnp.float32) / num_iter
    rng, choice_rng = jax.random.split(rng)
    scores = state.scores
    if order == "mdlm":
      alpha_t, alpha_s = remasking.alphas(t, num_iter, initial_unknown,
                                          schedule)
      decoded = ~unknown & ~given
      sigma, sigma_masked = remasking.sigma(remask, remask_eta, alpha_t,
                                            alpha_s, scores, decoded)
      reveal = remasking.unmask_probability(alpha_t, alpha_s, sigma_masked)
      u = jax.random.uniform(choice_rng, tokens.shape)
      remask_now = (unknown & (u >= reveal)) | (decoded & (u < sigma))
      scores = jnp.where(unknown & ~remask_now, -confidence, scores)
    elif order == "critic":
      fake = tokens_to_critic(critic_params, sampled).astype(jnp.float32)
      mask_len = num_to_mask(initial_unknown, initial_unknown, ratio,
                             schedule)
      remask_now = mask_by_random_topk(
          choice_rng, mask_len, jnp.where(given, CONFIDENCE_OF_KNOWN_TOKENS,
                                          -fake),
          choice_temperature * (1.0 - ratio))
    elif ranks is None:
      mask_len = num_to_mask(initial_unknown, jnp.sum(unknown, axis=-1),
                             ratio, schedule)
      remask_now = mask_by_random_topk(choice_rng, mask_len, confidence,
                                       choice_temperature * (1.0 - ratio))
    else:  # keep the positions of lowest rank, R_t of N0 by now
      revealed = reveal_order.revealed_count(t, num_iter, initial_unknown,
                                             schedule)
      remask_now = mask_lowest((initial_unknown - revealed)[:, None],
                               jnp.where(unknown, -ranks,
                                         CONFIDENCE_OF_KNOWN_TOKENS))
    return DecodeState(
        tokens=jnp.where(remask_now, mask_token_id, sampled),
        rng=rng,
        sequences=state.sequences.at[:, t].set(sampled),
        step_inputs=state.step_inputs.at[t].set(tokens),
        scores=scores)

  init = DecodeState(
      tokens=inputs,
      rng=rng,
      sequences=jnp.broadcast_to(inputs[:, None], (batch, num_iter, length)),
      step_inputs=jnp.broadcast_to(inputs[None], (num_iter, batch, length)),
      scores=(jnp.zeros((batch, length), jnp.float32) if order == "mdlm"
              else None))
  start_iter = jnp.asarray(start_iter, jnp.int32)
  if not unroll:
    return jax.lax.fori_loop(start_iter, num_iter, body, init)
  state = init
  for t in range(num_iter):
    t = jnp.int32(t)
    state = jax.lax.cond(t >= start_iter, body, lambda _, s: s, t, state)
  return state
