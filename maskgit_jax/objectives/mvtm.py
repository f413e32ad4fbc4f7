"""Mask schedules, training-time mask sampling and the MVTM loss.

A mask schedule gamma maps the decoding progress ``r in [0, 1]`` to the share
of tokens still masked (paper Section 3.3). gamma is continuous, decreasing,
gamma(0) ~ 1 and gamma(1) ~ 0; values are clipped to ``[1e-6, 1]`` as in the
official code. Training (Section 3.1) samples ``r ~ U[0, 1)`` and masks
``ceil(gamma(r) * N)`` of the ``N`` image tokens, chosen uniformly; the loss
is the cross-entropy on the masked tokens.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.objectives import mage_corruption

SCHEDULES = ("cosine", "arccos", "linear", "square", "cubic", "sqrt", "log",
             "exp")
"""Named schedules; any ``"pow<k>"`` (e.g. ``"pow2.5"``) works as well."""

_ALIASES = {"uniform": "pow1", "linear": "pow1", "square": "pow2",
            "cubic": "pow3", "sqrt": "pow0.5"}
_POW = re.compile(r"^pow(\d+(\.\d*)?|\.\d+)$")

MIN_MASK_RATIO = 1e-6

MASK_RATIOS = ("schedule", "mar", "emigm")
"""How training draws each image's masked share (:func:`mask_ratio`)."""


def validate_schedule(method: str) -> str:
  """Returns the canonical name of ``method`` or raises a ValueError naming it."""
  canonical = _ALIASES.get(method, method)
  if canonical in ("cosine", "arccos", "log", "exp") or _POW.match(canonical):
    if _POW.match(canonical) and float(canonical[3:]) <= 0:
      raise ValueError(f"pow schedules need a positive exponent, got {method!r}")
    return canonical
  raise ValueError(
      f"unknown mask schedule {method!r}; expected one of {SCHEDULES} or "
      "'pow<k>' with k > 0")


def schedule(ratio, total_unknown, method: str = "cosine") -> jax.Array:
  """The mask ratio gamma(ratio), clipped to ``[1e-6, 1]``.

  Computed in float32 the way the official ``mask_schedule.schedule`` does,
  so that ``floor(N * gamma)`` rounds identically.

  Args:
    ratio: progress in ``[0, 1]``: any shape.
    total_unknown: number of tokens to generate (used by "log" and "exp");
      broadcastable against ``ratio``.
    method: "cosine", "arccos", "linear" (alias "uniform"), "square",
      "cubic", "sqrt", "log", "exp", or "pow<k>".

  Returns:
    float32 array of the broadcast shape of ``ratio`` and ``total_unknown``
    (the shape of ``ratio`` for schedules that ignore ``total_unknown``).
  """
  method = validate_schedule(method)
  ratio = jnp.asarray(ratio, jnp.float32)
  if method.startswith("pow"):
    mask_ratio = 1.0 - ratio**float(method[3:])
  elif method == "cosine":
    mask_ratio = jnp.cos(math.pi / 2.0 * ratio)
  elif method == "arccos":  # Halton-MaskGIT and MaskBit: arccos(r) / (pi/2)
    mask_ratio = jnp.arccos(jnp.clip(ratio, -1.0, 1.0)) / (math.pi / 2.0)
  else:
    log2_n = jnp.log2(jnp.asarray(total_unknown, jnp.float32))
    if method == "log":
      mask_ratio = -jnp.log2(ratio) / log2_n
    else:  # exp
      mask_ratio = 1.0 - jnp.exp2(-log2_n * (1.0 - ratio))
  return jnp.clip(mask_ratio, MIN_MASK_RATIO, 1.0)


def mask_ratio(rng: jax.Array, batch: int, length: int, *,
               distribution: str = "schedule", method: str = "cosine"
               ) -> jax.Array:
  """float32 ``[batch]``: each training image's masked share.

  * "schedule" (the paper): ``gamma(r)``, ``r ~ U[0, 1)``, ``gamma`` the
    mask schedule ``method``;
  * "mar" (MAR): a normal of mode 1 and sigma 0.25 truncated to [0.7, 1]
    (MAR draws one per batch; here one per image, the same marginal);
  * "emigm" (eMIGM): ``1 - exp(-5 t)``, ``t ~ U[0.2, 1)`` (at least 63%).
  """
  if distribution == "schedule":
    r = jax.random.uniform(rng, (batch,), minval=0.0, maxval=1.0)
    return schedule(r, length, method)
  if distribution == "mar":
    return mage_corruption.mask_ratio(rng, (batch,), mean=1.0, std=0.25,
                                      low=0.7, high=1.0)
  if distribution == "emigm":
    t = jax.random.uniform(rng, (batch,), minval=0.2, maxval=1.0)
    return 1.0 - jnp.exp(-5.0 * t)
  raise ValueError(f"unknown mask ratio distribution {distribution!r}; "
                   f"expected one of {MASK_RATIOS}")


def sample_mask(rng: jax.Array, batch: int, length: int, *,
                method: str = "cosine", min_mask_rate: float = 0.0,
                distribution: str = "schedule") -> jax.Array:
  """Training-time masks: ``ceil(ratio * length)`` uniform positions per
  row, the ratio drawn by :func:`mask_ratio`.

  Args:
    rng: PRNG key.
    batch: number of rows.
    length: number of image tokens per row (N).
    method: mask schedule (see :func:`schedule`) of the "schedule" draw.
    min_mask_rate: lower bound on the masked share; at least one token is
      always masked.
    distribution: one of ``MASK_RATIOS`` (see :func:`mask_ratio`).

  Returns:
    bool ``[batch, length]``, True where the token is masked.
  """
  if not 0.0 <= min_mask_rate <= 1.0:
    raise ValueError(f"min_mask_rate must lie in [0, 1], got {min_mask_rate}")
  ratio_rng, position_rng = jax.random.split(rng)
  ratio = mask_ratio(ratio_rng, batch, length, distribution=distribution,
                     method=method)
  num_masked = jnp.ceil(ratio * length)
  lower = max(1, math.ceil(min_mask_rate * length))
  num_masked = jnp.clip(num_masked, lower, length).astype(jnp.int32)
  # Rank of each position under i.i.d. uniform scores: a uniform subset.
  scores = jax.random.uniform(position_rng, (batch, length))
  ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
  return ranks < num_masked[:, None]


def weighted_cross_entropy(*, logits: jax.Array, targets: jax.Array,
                           weights: jax.Array | None = None,
                           label_smoothing: float = 0.0) -> jax.Array:
  """Label-smoothed cross-entropy, weighted per row, averaged over rows (f32).

  Matches the official ``weighted_sequence_cross_entropy_loss``: each row's
  loss is ``sum_l(w * ce) / sum_l(w)``, then rows are averaged, so every
  image counts the same however many of its tokens were masked. The smoothed
  target puts ``1 - s + s / V`` on the true id and ``s / V`` on each other id.

  Args:
    logits: ``[batch, length, V]`` logits (cast to float32).
    targets: int ``[batch, length]`` true ids in ``[0, V)``.
    weights: ``[batch, length]`` weights (e.g. the training mask); None
      weighs every position equally.
    label_smoothing: s in ``[0, 1)``.

  Returns:
    Scalar loss. A row whose weights are all 0 contributes 0.
  """
  logits = logits.astype(jnp.float32)
  one_hot = jax.nn.one_hot(targets, logits.shape[-1], dtype=jnp.float32)
  soft = optax.smooth_labels(one_hot, label_smoothing)
  ce = optax.softmax_cross_entropy(logits, soft)
  if weights is None:
    weights = jnp.ones_like(ce)
  weights = weights.astype(jnp.float32)
  per_row = jnp.sum(ce * weights, -1) / jnp.maximum(jnp.sum(weights, -1), 1e-8)
  return jnp.mean(per_row)


def mvtm_loss(*, logits: jax.Array, targets: jax.Array, mask: jax.Array,
              label_smoothing: float = 0.1,
              loss_on: str = "masked") -> tuple[jax.Array, dict[str, jax.Array]]:
  """Masked visual token modeling loss and metrics.

  Args:
    logits: ``[batch, length, vocab]`` transformer logits.
    targets: int ``[batch, length]`` true ids.
    mask: bool ``[batch, length]``, True at the positions that were masked in
      the input (False at the class token).
    label_smoothing: as in :func:`weighted_cross_entropy` (paper: 0.1).
    loss_on: "masked" (paper) or "all" positions.

  Returns:
    ``(loss, metrics)`` with metrics ``masked_accuracy`` and ``masked_per_row``.
  """
  if loss_on not in ("masked", "all"):
    raise ValueError(f"loss_on must be 'masked' or 'all', got {loss_on!r}")
  mask = mask.astype(jnp.float32)
  weights = mask if loss_on == "masked" else jnp.ones_like(mask)
  loss = weighted_cross_entropy(logits=logits, targets=targets,
                                weights=weights,
                                label_smoothing=label_smoothing)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  metrics = {
      "masked_accuracy": jnp.sum(correct * mask) / jnp.maximum(mask.sum(), 1.0),
      "masked_per_row": jnp.mean(jnp.sum(mask, axis=-1)),
  }
  return loss, metrics
