"""Classifier-free guidance scale schedules for the parallel decode.

One parameterisation throughout: ``logits = cond + w * (cond - uncond)``,
``w = 0`` is no guidance (Halton-MaskGIT's ``w``, MaskBit's ``w``, the
1d-tokenizer's constant and linear schedules, the official MaskGIT
``cfg_scale``). Libraries that write ``uncond + s * (cond - uncond)``
(lucidrains' ``cond_scale``, the 1d-tokenizer's and MDT's power-cosine)
have ``s = w + 1``: the 1d-tokenizer's power-cosine ``s = 8.1`` is MaskBit's
``w = 7.1`` and ours.

Schedules of ``w_t`` at step ``k`` of ``T`` (``progress = k / T``):

* ``"constant"``: ``w``;
* ``"linear"``: ``w`` times the share of image tokens already decoded in the
  step's input (this library's ramp; no guidance on an all-masked grid);
* ``"step_linear"``: ``w k / T`` (MUSE Section 2.7 as the 1d-tokenizer and
  MaskBit implement it; 0 at the first step);
* ``"power_cosine"``: ``w (1 - cos(pi (k / T) ** p)) / 2`` (MDT, adopted by
  the 1d-tokenizer with ``p = 3`` and by MaskBit with ``p`` 3 or 2.5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

CFG_SCHEDULES = ("constant", "linear", "step_linear", "power_cosine")
STEP_SCHEDULES = ("step_linear", "power_cosine")
"""Schedules that need the step's progress ``k / T`` from the decode."""


def combine(cond: jax.Array, uncond: jax.Array, scale) -> jax.Array:
  """Guided logits ``cond + w (cond - uncond)`` (this module's one
  parameterisation; ``scale`` broadcasts against the logits)."""
  return cond + scale * (cond - uncond)


def guidance_scale(schedule: str, scale, *, progress=None,
                   decoded_share=None, power=3.0) -> jax.Array:
  """``w_t`` of :data:`CFG_SCHEDULES` (see the module doc).

  Args:
    schedule: the schedule name.
    scale: ``w`` (float scalar, may be traced).
    progress: ``k / T`` for the step schedules.
    decoded_share: float ``[batch]``: share of decoded image tokens, for
      ``"linear"``.
    power: ``p`` of ``"power_cosine"``.

  Returns:
    float32, scalar or ``[batch]``.
  """
  scale = jnp.asarray(scale, jnp.float32)
  if schedule == "constant":
    return scale
  if schedule == "linear":
    return scale * jnp.asarray(decoded_share, jnp.float32)
  if schedule not in STEP_SCHEDULES:
    raise ValueError(f"cfg_schedule must be one of {CFG_SCHEDULES}, got "
                     f"{schedule!r}")
  if progress is None:
    raise ValueError(f"cfg_schedule {schedule!r} needs the step's progress")
  progress = jnp.asarray(progress, jnp.float32)
  if schedule == "step_linear":
    return scale * progress
  ramp = (1.0 - jnp.cos(math.pi * progress ** jnp.asarray(power, jnp.float32))
          ) / 2.0
  return scale * ramp


@dataclasses.dataclass(frozen=True)
class GuidedLogits:
  """Classifier-free guidance around a ``tokens_to_logits`` function.

  ``params`` is ``{"model": model params, "cfg_scale": w}`` (plus
  ``"cfg_power"``, the ``p`` of ``"power_cosine"``, default 3); the
  unconditional pass replaces the class token by the null class token.
  ``ramp`` is a :data:`CFG_SCHEDULES` name; the step
  schedules take the decode's ``progress`` (see ``takes_progress``).
  """

  logits_fn: Callable[[Any, jax.Array], jax.Array]
  null_token: int
  mask_id: int
  ramp: str = "constant"

  @property
  def takes_progress(self) -> bool:
    """Whether :func:`maskgit_jax.decoding.parallel_decode.decode` passes ``k / T``."""
    return self.ramp in STEP_SCHEDULES

  def __call__(self, params, ids: jax.Array, progress=None) -> jax.Array:
    batch = ids.shape[0]
    uncond = ids.at[:, 0].set(self.null_token)
    both = self.logits_fn(params["model"], jnp.concatenate([ids, uncond], 0))
    cond, free = both[:batch], both[batch:]
    decoded = None
    if self.ramp == "linear":
      decoded = jnp.mean(ids[:, 1:] != self.mask_id, axis=-1)
    scale = guidance_scale(
        self.ramp, params["cfg_scale"], progress=progress,
        decoded_share=decoded, power=params.get("cfg_power", 3.0))
    scale = jnp.reshape(scale, jnp.shape(scale) + (1, 1))
    return combine(cond, free, scale)
