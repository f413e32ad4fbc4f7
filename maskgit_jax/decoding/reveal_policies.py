"""Reveal policies: which sampled tokens go back to the mask after a step.

Each decode iteration is logits -> draw -> confidence -> policy. A policy
sees one :class:`Step` and returns the positions to re-mask and its own
carry (the state it keeps between steps). :func:`make_policy` builds the
policy an ``order`` names, so the decode loop never branches on the order
and a policy's settings cannot be combined with another's.

* :class:`Confidence` (official): re-mask the ``clip(floor(N0 gamma(r)), 1,
  unknown - 1)`` least confident samples, with Gumbel noise of
  ``choice_temperature (1 - r)``.
* :class:`FixedOrder` (``halton``, ``random``): keep the positions of
  lowest rank in a fixed order, ``R_t`` of ``N0`` by step ``t``.
* :class:`MaskedDiffusion` (``mdlm``, with ReMDM's re-masking): each masked
  token is revealed with the schedule's probability; decoded tokens may
  return (carry: their scores).
* :class:`Critic` (Token-Critic): every generated token competes by its
  critic logit; accepted tokens may return to the mask.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from maskgit_jax.objectives import mvtm
from maskgit_jax.decoding import remasking
from maskgit_jax.decoding import reveal_order

KNOWN = jnp.inf  # the confidence of given and already-revealed tokens
_ORDER_KEY = 0x0D3E  # fold_in constant of a random order's key


class Step(NamedTuple):
  """What a policy sees after iteration ``t`` drew its samples.

  ``[b, L]`` arrays: ``tokens`` (the iteration's input), ``sampled`` (it
  with every masked position drawn), ``unknown`` (masked in the input),
  ``given`` (never masked: class token, edit context), ``confidence``
  (``log p(sampled)`` at unknown positions, ``+inf`` elsewhere).
  ``initial_unknown`` int ``[b]`` is ``N0``; ``ratio`` is ``(t + 1) / T``;
  ``rng`` is the official choice key.
  """

  t: jax.Array
  ratio: jax.Array
  tokens: jax.Array
  sampled: jax.Array
  unknown: jax.Array
  given: jax.Array
  confidence: jax.Array
  initial_unknown: jax.Array
  rng: jax.Array


def mask_lowest(mask_len: jax.Array, score: jax.Array) -> jax.Array:
  """bool ``[b, L]``: the ``mask_len`` (``[b, 1]``) positions of lowest
  ``score`` per row; ties at the cut-off stay unmasked and ``+inf`` is
  never masked."""
  cut_off = jnp.take_along_axis(jnp.sort(score, axis=-1),
                                mask_len.astype(jnp.int32), axis=-1)
  return score < cut_off


def mask_by_random_topk(rng: jax.Array, mask_len: jax.Array,
                        log_confidence: jax.Array, temperature) -> jax.Array:
  """bool ``[b, L]``: the ``mask_len`` least confident positions after
  adding ``temperature`` times Gumbel noise (the official choice)."""
  confidence = log_confidence + temperature * jax.random.gumbel(
      rng, log_confidence.shape, dtype=jnp.float32)
  return mask_lowest(mask_len, confidence)


def num_to_mask(initial_unknown: jax.Array, unknown: jax.Array, ratio,
                schedule: str) -> jax.Array:
  """float32 ``[b, 1]``: ``max(1, min(unknown - 1, floor(N0 gamma(r))))``
  for ``initial_unknown`` N0 and ``unknown`` int ``[b]``."""
  mask_ratio = mvtm.schedule(ratio, initial_unknown, schedule)
  mask_len = jnp.floor(initial_unknown * mask_ratio)[:, None]
  return jnp.maximum(1, jnp.minimum(unknown[:, None] - 1, mask_len))


@dataclasses.dataclass(frozen=True)
class Confidence:
  """The official policy (see the module docstring)."""

  schedule: str
  choice_temperature: Any

  def init(self):
    return None

  def remask(self, step: Step, carry):
    mask_len = num_to_mask(step.initial_unknown,
                           jnp.sum(step.unknown, axis=-1), step.ratio,
                           self.schedule)
    return mask_by_random_topk(
        step.rng, mask_len, step.confidence,
        self.choice_temperature * (1.0 - step.ratio)), carry


@dataclasses.dataclass(frozen=True)
class FixedOrder:
  """Reveals by ``ranks`` int ``[b, L]`` (lowest first)."""

  schedule: str
  num_iter: int
  ranks: jax.Array

  def init(self):
    return None

  def remask(self, step: Step, carry):
    revealed = reveal_order.revealed_count(step.t, self.num_iter,
                                           step.initial_unknown,
                                           self.schedule)
    return mask_lowest((step.initial_unknown - revealed)[:, None],
                       jnp.where(step.unknown, -self.ranks, KNOWN)), carry


@dataclasses.dataclass(frozen=True)
class MaskedDiffusion:
  """MDLM's posterior with ReMDM's ``remask`` (carry: float32 ``[b, L]``
  scores, each decoded token's negative log-probability)."""

  schedule: str
  num_iter: int
  strategy: str  # ReMDM's remask: none, cap, rescale, conf
  remask_eta: Any
  shape: tuple[int, int]

  def init(self):
    return jnp.zeros(self.shape, jnp.float32)

  def remask(self, step: Step, carry):
    alpha_t, alpha_s = remasking.alphas(step.t, self.num_iter,
                                        step.initial_unknown, self.schedule)
    decoded = ~step.unknown & ~step.given
    sigma, sigma_masked = remasking.sigma(self.strategy, self.remask_eta,
                                          alpha_t, alpha_s, carry, decoded)
    reveal = remasking.unmask_probability(alpha_t, alpha_s, sigma_masked)
    u = jax.random.uniform(step.rng, step.tokens.shape)
    remask_now = (step.unknown & (u >= reveal)) | (decoded & (u < sigma))
    scores = jnp.where(step.unknown & ~remask_now, -step.confidence, carry)
    return remask_now, scores


@dataclasses.dataclass(frozen=True)
class Critic:
  """Token-Critic: ``tokens_to_critic(critic_params, tokens [b, L]) ->
  logits [b, L]``, high where a token looks sampled."""

  schedule: str
  choice_temperature: Any
  tokens_to_critic: Callable
  critic_params: Any

  def init(self):
    return None

  def remask(self, step: Step, carry):
    fake = self.tokens_to_critic(self.critic_params,
                                 step.sampled).astype(jnp.float32)
    mask_len = num_to_mask(step.initial_unknown, step.initial_unknown,
                           step.ratio, self.schedule)
    return mask_by_random_topk(
        step.rng, mask_len, jnp.where(step.given, KNOWN, -fake),
        self.choice_temperature * (1.0 - step.ratio)), carry


def make_policy(options, inputs: jax.Array, rng: jax.Array, *,
                tokens_to_critic: Callable | None = None,
                critic_params=None):
  """The policy ``options.order`` names, for int ``inputs`` ``[b, L]``
  (a fixed order draws its ranks from ``rng`` folded with a constant).

  Raises:
    ValueError: a critic without ``order="critic"`` or the reverse; a fixed
      order on a grid that is not square.
  """
  order = options.order
  if (order == "critic") != (tokens_to_critic is not None):
    raise ValueError("order='critic' and tokens_to_critic go together; got "
                     f"order={order!r} with tokens_to_critic="
                     f"{tokens_to_critic!r}")
  if order == "confidence":
    return Confidence(options.schedule, options.choice_temperature)
  if order == "mdlm":
    return MaskedDiffusion(options.schedule, options.num_iter, options.remask,
                           options.remask_eta, inputs.shape)
  if order == "critic":
    return Critic(options.schedule, options.choice_temperature,
                  tokens_to_critic, critic_params)
  batch, length = inputs.shape
  side = int(round((length - 1) ** 0.5))
  if side * side != length - 1:
    raise ValueError(f"order {order!r} needs a square grid after the class "
                     f"token, got length {length}")
  ranks = reveal_order.position_ranks(
      order, jax.random.fold_in(rng, _ORDER_KEY), batch, (side, side),
      roll=options.roll_order)
  return FixedOrder(options.schedule, options.num_iter, ranks)
