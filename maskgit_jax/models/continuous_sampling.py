"""The continuous model as :func:`continuous_decode.decode` calls it.

``params = {"body": ..., "head": ...}`` (as
:class:`~maskgit_jax.trainers.continuous_objectives.ContinuousMVTM` trains
them). :class:`Predict` runs the body, once more with the null class when
guided; :class:`DiffusionDraw` and :class:`MixtureDraw` draw a token for
every position from the head. All are frozen dataclasses: hashable, so one
compiled decode serves every call with the same settings.

Guidance (diffusion only, MAR's): the head's noise prediction under the
class and under the null class, ``eps_c + w (eps_c - eps_u)``, at every
step of the head's chain.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.models import continuous_heads
from maskgit_jax.models import continuous_transformer
from maskgit_jax.objectives import diffusion
from maskgit_jax.objectives import gaussian_mixture


@dataclasses.dataclass(frozen=True)
class Predict:
  """``(params, x, unknown, labels) -> z``: ``[b, L, D]``, or with a
  ``null_label`` (guided) ``[b, L, 2, D]`` (class, null class)."""

  model: continuous_transformer.ContinuousTransformer
  null_label: int | None = None

  def __call__(self, params, x, unknown, labels):
    apply = lambda y: self.model.apply({"params": params["body"]}, x,  # pylint: disable=unnecessary-lambda-assignment
                                       unknown, y)
    if self.null_label is None:
      return apply(labels)
    return jnp.stack([apply(labels),
                      apply(jnp.full_like(labels, self.null_label))], 2)


@dataclasses.dataclass(frozen=True)
class DiffusionDraw:
  """Tokens from the diffusion head: ``steps`` respaced levels of
  ``num_levels``, noise ``temperature`` (MAR's tau), guidance
  ``cfg_scale`` (needs a guided :class:`Predict`), ``clip_x0`` (see
  ``diffusion.step``). The log-density is not available: zeros (use the
  random order)."""

  head: continuous_heads.DiffusionHead
  steps: int = 100
  num_levels: int = 1000
  temperature: float = 1.0
  cfg_scale: float = 0.0
  clip_x0: float | None = None

  def __call__(self, params, rng, z):
    guided = z.ndim == 4
    b, length = z.shape[:2]
    flat = z.reshape((b * length,) + z.shape[2:])

    def epsilon(x, level):
      apply = lambda cond: self.head.apply(  # pylint: disable=unnecessary-lambda-assignment
          {"params": params["head"]}, x, jnp.full(x.shape[:1], level), cond)
      if not guided:
        return apply(flat)
      eps_c, eps_u = apply(flat[:, 0]), apply(flat[:, 1])
      return eps_c + self.cfg_scale * (eps_c - eps_u)
    bars = diffusion.cosine_alpha_bars(self.num_levels)
    x = diffusion.sample(rng, epsilon, (b * length, self.head.channels), bars,
                         self.steps, self.temperature, self.clip_x0)
    return x.reshape(b, length, -1), jnp.zeros((b, length), jnp.float32)


@dataclasses.dataclass(frozen=True)
class MixtureDraw:
  """Tokens from the mixture head at ``temperature``, with their
  log-density under the (untempered) mixture (GIVT's density order)."""

  head: continuous_heads.MixtureHead
  temperature: float = 1.0

  def __call__(self, params, rng, z):
    if z.ndim == 4:
      raise ValueError("the mixture head samples without guidance (GIVT "
                       "guides by rejection); give Predict no null_label")
    mixture = self.head.apply({"params": params["head"]}, z)
    x = gaussian_mixture.sample(rng, *mixture, temperature=self.temperature)
    return x, gaussian_mixture.log_prob(x, *mixture)


def initial(labels: np.ndarray, num_tokens: int, channels: int
            ) -> tuple[np.ndarray, np.ndarray]:
  """``(x zeros [b, L, C], unknown all True [b, L])``: generation from
  nothing."""
  b = len(labels)
  return (np.zeros((b, num_tokens, channels), np.float32),
          np.ones((b, num_tokens), bool))


def draw_for(head, num_levels: int, options) -> DiffusionDraw | MixtureDraw:
  """The draw of ``head`` (a :class:`~maskgit_jax.models.continuous_heads.
  DiffusionHead` of ``num_levels`` levels, or a ``MixtureHead``) with a
  :class:`~maskgit_jax.decoding.continuous_options.ContinuousOptions`'
  settings; the mixture head refuses the diffusion-only ones."""
  if isinstance(head, continuous_heads.MixtureHead):
    if options.cfg_scale:
      raise ValueError(f"cfg_scale {options.cfg_scale}: the mixture head "
                       "samples without guidance (GIVT guides by rejection)")
    return MixtureDraw(head, float(options.temperature))
  if options.order == "density":
    raise ValueError("order='density' ranks by the head's log-density, "
                     "which the diffusion head does not give: use "
                     "order='random'")
  return DiffusionDraw(head, int(options.steps), int(num_levels),
                       float(options.temperature), float(options.cfg_scale),
                       options.clip_x0)
