"""What a decode step samples from: temperature schedules, top-k and top-p.

* Temperature schedules: ``"constant"`` (the official decode) or
  ``"linear"``: from ``temperature`` at the first step to
  ``final_temperature`` at the last (lucidrains' MUSE anneals to 0, i.e.
  argmax, at the last step; the ReMDM image runs use ``temp * (T - t) /
  T``). A *divide-by* temperature: larger is flatter (Halton-MaskGIT's
  "temperature" multiplies the logits: its ``tau`` is ``1 / temperature``).
* ``top_k`` (Taming's sampling, lucidrains' ``topk_filter_thres``): only the
  ``k`` most likely ids keep their probability mass, exactly ``k`` (ties
  broken by id).
* ``top_p`` (nucleus sampling, Holtzman et al. 2020): the smallest set of
  the most likely ids whose mass reaches ``p``.

Filters act on tempered logits; removed ids get ``-inf``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

TEMPERATURE_SCHEDULES = ("constant", "linear")


def temperature_at(step, num_iter: int, temperature, final_temperature,
                   schedule: str) -> jax.Array:
  """The sampling temperature of step ``step`` (0-based) of ``num_iter``.

  ``"linear"``: ``temperature + (final - temperature) * step / (T - 1)``;
  ``"constant"``: ``temperature``. Floored at 1e-6 (0 means argmax).
  """
  if schedule not in TEMPERATURE_SCHEDULES:
    raise ValueError(f"temperature_schedule must be one of "
                     f"{TEMPERATURE_SCHEDULES}, got {schedule!r}")
  temperature = jnp.asarray(temperature, jnp.float32)
  if schedule == "linear" and num_iter > 1:
    share = jnp.asarray(step, jnp.float32) / (num_iter - 1)
    temperature = temperature + (jnp.asarray(final_temperature, jnp.float32)
                                 - temperature) * share
  return jnp.maximum(temperature, 1e-6)


def _ranks(logits: jax.Array) -> jax.Array:
  """int32 ``[..., K]``: 0 for the largest logit (ties: the lower id first)."""
  order = jnp.argsort(-logits, axis=-1, stable=True)
  return jnp.argsort(order, axis=-1, stable=True).astype(jnp.int32)


def top_k_filter(logits: jax.Array, k) -> jax.Array:
  """Keeps the ``k`` largest logits per row (``k`` may be traced, >= 1)."""
  keep = _ranks(logits) < jnp.maximum(jnp.asarray(k, jnp.int32), 1)
  return jnp.where(keep, logits, -jnp.inf)


def top_p_filter(logits: jax.Array, p) -> jax.Array:
  """Keeps the smallest set of most likely ids with mass >= ``p`` per row.

  An id is kept when the mass of the ids ranked above it is below ``p``, so
  the most likely id always stays.
  """
  order = jnp.argsort(-logits, axis=-1, stable=True)
  probs = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), order, -1)
  mass_above = jnp.cumsum(probs, axis=-1) - probs
  keep_sorted = mass_above < jnp.asarray(p, jnp.float32)
  keep = jnp.take_along_axis(keep_sorted, jnp.argsort(order, axis=-1), -1)
  return jnp.where(keep, logits, -jnp.inf)


def check_filters(top_k, top_p) -> None:
  """Raises ValueError unless ``top_k`` is an integer >= 0 (0: off) and
  ``top_p`` lies in (0, 1] (1: off): the options' convention."""
  if isinstance(top_k, bool) or int(top_k) != top_k or top_k < 0:
    raise ValueError(f"top_k must be an integer >= 0 (0: off), got {top_k}")
  if not 0 < top_p <= 1:
    raise ValueError(f"top_p must lie in (0, 1] (1: off), got {top_p}")


def filter_logits(logits: jax.Array, top_k=None, top_p=None) -> jax.Array:
  """Applies :func:`top_k_filter` then :func:`top_p_filter` (None: off)."""
  if top_k is not None:
    logits = top_k_filter(logits, top_k)
  if top_p is not None:
    logits = top_p_filter(logits, top_p)
  return logits
