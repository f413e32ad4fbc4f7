"""Masked-diffusion steps with re-masking: MDLM and ReMDM for the decode.

``order="mdlm"`` of :func:`maskgit_jax.decoding.parallel_decode.decode` samples the
masked-diffusion posterior instead of keeping a fixed count of confident
tokens (Sahoo et al. 2024; Wang et al. 2025, ReMDM, ``kuleshov-group/remdm``
``diffusion.py::_ddpm_caching_update``; on images the JAX fork
``yair-schiff/maskgit``). With ``alpha`` the share of unmasked tokens, a
step goes from ``alpha_t`` to ``alpha_s > alpha_t``; per position:

* masked: unmasked (to a token drawn from the model) with probability
  ``(alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``, else stays masked;
* decoded earlier: masked again with probability ``sigma`` (0: MDLM, which
  never revisits a token).

``sigma`` lies in ``[0, sigma_max]``, ``sigma_max = min(1, (1 - alpha_s) /
alpha_t)``; the strategies (``remask``):

* ``"none"``: ``sigma = 0`` (MDLM);
* ``"cap"``: ``min(eta, (1 - alpha_s) / alpha_t)`` (the paper's
  ReMDM-cap; image runs: ``eta = 0.05`` at temperature 0.8);
* ``"rescale"``: ``eta * sigma_max``;
* ``"conf"``: ``sigma_max`` times a softmax over the decoded positions of
  each one's negative log-probability when it was decoded (less confident
  tokens return to the mask first).

``alpha`` follows this library's mask schedule the way the count-based
decode does: ``alpha_t = 1 - gamma(i / T)`` before step ``i`` and
``alpha_s = 1 - gamma((i + 1) / T)`` after it. For the linear schedule
that is the fork's ``alpha``; for cosine the fork's is the mirror image.
Tokens given in the input (the class token, edited context) never change;
the last step unmasks everything and masks nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from maskgit_jax.objectives import mvtm

REMASK_STRATEGIES = ("none", "cap", "rescale", "conf")
_TINY = 1e-12


def alphas(step, num_iter: int, initial_unknown: jax.Array, schedule: str
           ) -> tuple[jax.Array, jax.Array]:
  """``(alpha_t, alpha_s)``, float32 ``[batch, 1]``, for step ``step``."""
  step = jnp.asarray(step, jnp.float32)

  def unmasked(ratio):
    gamma = mvtm.schedule(ratio, initial_unknown, schedule)
    value = jnp.where(ratio >= 1.0, 1.0,
                      jnp.where(ratio <= 0.0, 0.0, 1.0 - gamma))
    return jnp.broadcast_to(value, initial_unknown.shape)[:, None].astype(
        jnp.float32)
  return unmasked(step / num_iter), unmasked((step + 1.0) / num_iter)


def sigma(strategy: str, eta, alpha_t: jax.Array, alpha_s: jax.Array,
          scores: jax.Array, decoded: jax.Array
          ) -> tuple[jax.Array, jax.Array]:
  """``(sigma of each position [batch, length], sigma for the masked
  positions' unmasking [batch, 1])``: the first is 0 except at ``decoded``
  positions; the second is the row's ``sigma`` (0 for ``"conf"``, whose
  masked positions have weight 0).

  Args:
    strategy: one of :data:`REMASK_STRATEGIES`.
    eta: the strategy's scale (traced).
    alpha_t, alpha_s: float ``[batch, 1]`` from :func:`alphas`.
    scores: float ``[batch, length]``: negative log-probability of each
      decoded token when it was decoded (``"conf"``).
    decoded: bool ``[batch, length]``: tokens decoded earlier (the only
      ones that may be re-masked).
  """
  if strategy not in REMASK_STRATEGIES:
    raise ValueError(f"remask must be one of {REMASK_STRATEGIES}, got "
                     f"{strategy!r}")
  ratio = (1.0 - alpha_s) / jnp.maximum(alpha_t, _TINY)
  sigma_max = jnp.minimum(1.0, ratio)
  eta = jnp.asarray(eta, jnp.float32)
  if strategy == "none":
    per_row = jnp.zeros_like(alpha_t)
  elif strategy == "cap":
    per_row = jnp.clip(jnp.minimum(eta, ratio), 0.0, 1.0)
  elif strategy == "rescale":
    per_row = jnp.clip(eta * sigma_max, 0.0, 1.0)
  else:
    logits = jnp.where(decoded, scores, -jnp.inf)
    any_decoded = jnp.any(decoded, axis=-1, keepdims=True)
    weights = jax.nn.softmax(jnp.where(any_decoded, logits, 0.0), axis=-1)
    return jnp.where(decoded, sigma_max * weights, 0.0), jnp.zeros_like(
        alpha_t)
  return jnp.where(decoded, per_row, 0.0), per_row


def unmask_probability(alpha_t: jax.Array, alpha_s: jax.Array,
                       sigma_masked) -> jax.Array:
  """``(alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``, clipped to [0, 1]
  (1 once ``alpha_s`` is 1: the last step unmasks everything)."""
  p = (alpha_s - (1.0 - sigma_masked) * alpha_t) / jnp.maximum(
      1.0 - alpha_t, _TINY)
  return jnp.where(alpha_s >= 1.0, 1.0, jnp.clip(p, 0.0, 1.0))
