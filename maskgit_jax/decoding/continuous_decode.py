"""T-step parallel decoding of continuous tokens (MAR; GIVT's masked model).

MaskGIT's loop (:mod:`maskgit_jax.decoding.parallel_decode`) with vectors
instead of code ids, jitted once per shape in a ``lax.fori_loop``. At
iteration ``t`` (``r = (t + 1) / T``):

1. ``z = predict(params, x, unknown, labels)``: one condition per position;
2. ``candidates, log_density = draw(params, rng, z)``: a token for every
   position (the head's sampler: a diffusion chain, or a mixture draw);
3. the same count as MaskGIT's stays unknown,
   ``clip(floor(N0 gamma(r)), 1, unknown - 1)``
   (:func:`~maskgit_jax.decoding.reveal_policies.num_to_mask`), chosen by
   the order: "random" (MAR: a random order per image, fixed for the whole
   decode) or "density" (GIVT: the candidates' log-density plus
   ``choice_temperature * (1 - r)`` Gumbel noise, least likely stay
   unknown). Known positions are never re-masked and never change; the last
   iteration reveals everything.

In the random order the tokens to reveal are known before the draw, so
the head draws only those (as MAR): the ``K`` positions of
:func:`max_revealed` per iteration, a static bound on any iteration's count
(shapes stay static: one compiled program for every step). The density
order needs every candidate's log-density: it draws every unknown position
(the mixture head's draw is one linear layer).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from maskgit_jax.decoding import reveal_policies
from maskgit_jax.objectives import mvtm

ORDERS = ("random", "density")


def max_revealed(length: int, num_iter: int, schedule: str) -> int:
  """The most tokens any iteration reveals, over every initial unknown
  count ``1..length`` (a static bound for the random order's draw)."""
  with jax.ensure_compile_time_eval():
    initial = jnp.arange(1, length + 1, dtype=jnp.float32)
    still, most = initial, 0
    for t in range(num_iter):
      if t == num_iter - 1:
        mask_len = jnp.zeros_like(still)
      else:
        mask_len = reveal_policies.num_to_mask(initial, still, (t + 1.0) /
                                               num_iter, schedule)[:, 0]
        mask_len = jnp.where(still > 0, mask_len, 0.0)
      most = max(most, int(jnp.max(still - jnp.minimum(mask_len, still))))
      still = jnp.minimum(mask_len, still)
  return min(max(most, 1), length)


def _gather(values: jax.Array, positions: jax.Array) -> jax.Array:
  """``values [b, L, ...]`` at ``positions [b, K]`` -> ``[b, K, ...]``."""
  return jax.vmap(lambda v, p: v[p])(values, positions)


@functools.partial(jax.jit, static_argnames=(
    "predict", "draw", "num_iter", "schedule", "order"))
def decode(params: Any, x: jax.Array, unknown: jax.Array, labels: jax.Array,
           rng: jax.Array, *, predict: Callable, draw: Callable,
           num_iter: int = 16, schedule: str = "cosine",
           order: str = "random", choice_temperature=0.0
           ) -> tuple[jax.Array, jax.Array]:
  """Fills the ``unknown`` tokens of ``x``.

  Args:
    params: the model's parameters (passed to ``predict`` and ``draw``).
    x: float ``[b, L, C]``: known tokens (anything where unknown).
    unknown: bool ``[b, L]``: the tokens to generate.
    labels: int ``[b]`` class labels.
    rng: PRNG key.
    predict: ``(params, x, unknown, labels) -> z [b, L, D]`` (hashable).
    draw: ``(params, rng, z) -> (candidates [b, L, C], log_density [b, L])``
      (hashable); ``log_density`` is read by ``order="density"`` only.
    num_iter: T.
    schedule: the mask schedule (``mvtm.SCHEDULES``).
    order: one of ``ORDERS``.
    choice_temperature: Gumbel scale of the "density" order.

  Returns:
    ``(x, unknown_per_step)``: float32 ``[b, L, C]`` with every token
    known, and int32 ``[T, b]``: the unknown count after each iteration.
  """
  if order not in ORDERS:
    raise ValueError(f"order {order!r}; expected one of {ORDERS}")
  mvtm.validate_schedule(schedule)
  order_rng, rng = jax.random.split(rng)
  initial = jnp.sum(unknown, -1).astype(jnp.float32)
  random_scores = jax.random.uniform(order_rng, unknown.shape)
  counts = jnp.zeros((num_iter,) + unknown.shape[:1], jnp.int32)

  revealed_most = max_revealed(unknown.shape[1], num_iter, schedule)

  def body(t, carry):
    x, still, counts = carry
    step_rng, choice_rng = jax.random.split(jax.random.fold_in(rng, t))
    ratio = (t + 1.0) / num_iter
    z = predict(params, x, still, labels)
    mask_len = reveal_policies.num_to_mask(initial, jnp.sum(still, -1), ratio,
                                           schedule)

    def keep_and_reveal(score, temperature):
      """Which unknown tokens stay masked (none at the last step), and the
      rest, revealed now; known tokens are never chosen."""
      keep = reveal_policies.mask_by_random_topk(
          choice_rng, mask_len, jnp.where(still, score, jnp.inf), temperature)
      keep = jnp.where(t == num_iter - 1, False, keep & still)
      return keep, still & ~keep

    if order == "random":  # the order alone decides: draw the revealed only
      keep, reveal = keep_and_reveal(random_scores, 0.0)
      _, positions = jax.lax.top_k(  # revealed first, then the lowest index
          reveal.astype(jnp.float32), revealed_most)
      drawn, _ = draw(params, step_rng, _gather(z, positions))
      chosen = _gather(reveal, positions)[..., None]
      x = jax.vmap(lambda row, p, new: row.at[p].set(new))(
          x, positions, jnp.where(chosen, drawn.astype(jnp.float32),
                                  _gather(x, positions)))
    else:
      candidates, log_density = draw(params, step_rng, z)
      keep, reveal = keep_and_reveal(log_density,
                                     choice_temperature * (1.0 - ratio))
      x = jnp.where(reveal[..., None], candidates.astype(jnp.float32), x)
    return x, keep, counts.at[t].set(jnp.sum(keep, -1).astype(jnp.int32))
  x, _, counts = jax.lax.fori_loop(
      0, num_iter, body, (x.astype(jnp.float32), unknown, counts))
  return x, counts


def decode_rows(params: Any, x: jax.Array, unknown: jax.Array,
                labels: jax.Array, keys: jax.Array, options, *,
                predict: Callable, draw: Callable) -> jax.Array:
  """float32 ``[n, L, C]``: each row decoded alone with its own key.

  What the :class:`~maskgit_jax.inference.continuous_generator.
  ContinuousGenerator` and the training previews both run, so that the same
  options, keys and params give the same samples whatever the batch:
  ``keys`` uint32 ``[n, 2]``
  (:func:`~maskgit_jax.decoding.parallel_decode.row_keys`), ``options`` a
  :class:`~maskgit_jax.decoding.continuous_options.ContinuousOptions`
  (``predict`` guided and ``draw`` built to match it).
  """
  def one(row_x, row_unknown, label, key):
    out, _ = decode(params, row_x[None], row_unknown[None], label[None], key,
                    predict=predict, draw=draw, num_iter=options.num_iter,
                    schedule=options.schedule, order=options.order,
                    choice_temperature=options.choice_temperature)
    return out[0]
  return jax.vmap(one)(x, unknown, labels, keys)
