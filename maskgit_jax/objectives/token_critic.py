"""Token-critic training targets and loss (Lezama et al., ECCV 2022).

A critic learns, from a frozen generator's samples, which tokens of a
sequence were filled in by the generator. One training example:

1. mask real tokens with the generator's training schedule
   (:func:`maskgit_jax.objectives.mvtm.sample_mask`);
2. let the generator predict the masked positions and sample them
   (:func:`fill_masked`): ``filled = where(mask, sample, real)``;
3. label each position (:func:`targets`): ``"resampled"`` (the paper's
   label: 1 wherever the position was masked and refilled, even where the
   sample equals the real token) or ``"changed"`` (lucidrains' label: 1
   only where the sample differs from the real token);
4. binary cross-entropy of the critic's logits on ``filled`` against the
   labels (:func:`loss`).

At decode time (``order="critic"`` of
:func:`maskgit_jax.decoding.parallel_decode.decode`) every generated token competes
at every step, and the ones the critic rates most likely sampled go back to
the mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.decoding import parallel_decode

LABELS = ("resampled", "changed")
"""Critic label semantics: the paper's (position was refilled) or
lucidrains' (refilled with a different token)."""


def fill_masked(rng: jax.Array, inputs: jax.Array, logits: jax.Array,
                mask_id: int, *, temperature=1.0,
                sampler: str = "cdf") -> jax.Array:
  """Samples the masked positions of ``inputs`` from ``logits``.

  Args:
    rng: PRNG key.
    inputs: int ``[batch, length]``; ``mask_id`` where the generator fills.
    logits: float ``[batch, length, K]``: the generator's logits on
      ``inputs`` over the K ids that may be sampled.
    mask_id: the mask id in ``inputs``.
    temperature: sampling temperature.
    sampler: see :func:`maskgit_jax.decoding.parallel_decode.sample_tokens`.

  Returns:
    int32 ``[batch, length]``: ``inputs`` with every mask replaced by a
    sample; other tokens unchanged.
  """
  sampled = parallel_decode.sample_tokens(
      rng, logits.astype(jnp.float32), temperature, sampler=sampler)
  return jnp.where(inputs == mask_id, sampled, inputs).astype(jnp.int32)


def targets(mask: jax.Array, real: jax.Array, filled: jax.Array,
            kind: str = "resampled") -> jax.Array:
  """float32 ``[batch, length]`` critic labels (1 = sampled by the generator).

  Args:
    mask: bool ``[batch, length]``: the positions that were refilled.
    real, filled: int ``[batch, length]``: tokens before and after filling.
    kind: one of :data:`LABELS`.
  """
  if kind == "resampled":
    return mask.astype(jnp.float32)
  if kind == "changed":
    return (mask & (filled != real)).astype(jnp.float32)
  raise ValueError(f"critic label must be one of {LABELS}, got {kind!r}")


def loss(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None
         ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean binary cross-entropy of critic logits, with metrics.

  Args:
    logits: float ``[batch, length]`` critic logits.
    labels: float ``[batch, length]`` in {0, 1}.
    weights: float ``[batch, length]`` (default: all ones), e.g. zero at
      the class token, which is never sampled.

  Returns:
    ``(loss, metrics)``: the weighted mean BCE; ``critic_accuracy`` (sign
    of the logit against the label) and ``sampled_share`` (mean label),
    both weighted.
  """
  logits = logits.astype(jnp.float32)
  if weights is None:
    weights = jnp.ones_like(logits)
  total = jnp.maximum(jnp.sum(weights), 1.0)
  bce = optax.sigmoid_binary_cross_entropy(logits, labels)
  correct = ((logits > 0) == (labels > 0.5)).astype(jnp.float32)
  return jnp.sum(bce * weights) / total, {
      "critic_accuracy": jnp.sum(correct * weights) / total,
      "sampled_share": jnp.sum(labels * weights) / total,
  }
