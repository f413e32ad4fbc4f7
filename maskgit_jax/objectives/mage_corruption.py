"""MAGE's training corruption: a variable mask ratio and token dropping.

As LTH14/mage implements it (``models_mage.py``; the paper is Li et al.,
CVPR 2023):

* the mask ratio ``m ~ TruncatedNormal(mean 0.55, std 0.25)`` on
  ``[0.5, 1.0]`` (one per step for the whole batch in the reference;
  :func:`mask_ratio` draws any shape, so per-sample ratios are an option);
* per-token uniform noise, ranked: the ``ceil(L m)`` lowest-noise tokens are
  masked, and the ``ceil(L min_ratio)`` lowest (``min_ratio`` 0.5, the
  truncation's lower bound) are also **dropped** from the encoder input, so
  the dropped set lies inside the masked set and the encoder sees a static
  ``L - ceil(L min_ratio)`` image tokens. Ranks (argsort) replace the
  reference's loop-until-no-ties.

For the paper's ablation of the ratio distribution, :func:`sample_ratio`
also draws a uniform ratio on ``[low, high]`` or a fixed one (MAE's 0.75);
every distribution stays inside ``[0.5, 1]`` so the dropping is unchanged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

MEAN, STD, LOW, HIGH = 0.55, 0.25, 0.5, 1.0  # the reference's pre-training CLI
DISTRIBUTIONS = ("truncnorm", "uniform", "fixed")


def mask_ratio(rng: jax.Array, shape=(), *, mean: float = MEAN,
               std: float = STD, low: float = LOW, high: float = HIGH
               ) -> jax.Array:
  """float32 ratios of ``shape`` from ``TruncatedNormal(mean, std)`` on
  ``[low, high]`` (defaults: mean about 0.694, median about 0.676)."""
  unit = jax.random.truncated_normal(rng, (low - mean) / std,
                                     (high - mean) / std, shape, jnp.float32)
  return jnp.clip(mean + std * unit, low, high)


def sample_ratio(rng: jax.Array, shape=(), *, distribution: str = "truncnorm",
                 fixed: float = 0.75) -> jax.Array:
  """float32 mask ratios of ``shape`` in ``[LOW, HIGH]``.

  Args:
    distribution: "truncnorm" (MAGE's, :func:`mask_ratio`), "uniform" (on
      ``[LOW, HIGH]``) or "fixed" (every ratio ``fixed``).
    fixed: the ratio of "fixed" (MAE's 0.75 by default).
  """
  check_distribution(distribution, fixed)
  if distribution == "truncnorm":
    return mask_ratio(rng, shape)
  if distribution == "uniform":
    return jax.random.uniform(rng, shape, jnp.float32, LOW, HIGH)
  return jnp.full(shape, fixed, jnp.float32)


def check_distribution(distribution: str, fixed: float) -> None:
  """Raises ValueError for an unknown distribution or a fixed ratio outside
  ``[LOW, HIGH]`` (below LOW, dropped tokens would not all be masked)."""
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f"mask-ratio distribution must be one of "
                     f"{DISTRIBUTIONS}, got {distribution!r}")
  if distribution == "fixed" and not LOW <= fixed <= HIGH:
    raise ValueError(f"a fixed mask ratio must be in [{LOW}, {HIGH}] (the "
                     f"dropped share is {LOW}), got {fixed}")


def num_dropped(length: int, min_ratio: float = LOW) -> int:
  """Tokens dropped from every encoder input: ``ceil(length * min_ratio)``."""
  return math.ceil(length * min_ratio - 1e-9)


def drop_and_mask(rng: jax.Array, batch: int, length: int, ratio, *,
                  min_ratio: float = LOW) -> tuple[jax.Array, jax.Array]:
  """Which tokens each row masks, and which it keeps in the encoder.

  Args:
    rng: PRNG key of the per-token noise.
    batch, length: rows and image tokens ``L``.
    ratio: the mask ratio, scalar or float ``[batch]``, in ``[min_ratio, 1]``.
    min_ratio: the share always dropped.

  Returns:
    ``(mask, kept)``: bool ``[batch, L]``, True where masked
    (``ceil(L ratio)`` per row); int32 ``[batch, L - num_dropped]``, the
    positions the encoder sees, in increasing order (masked ones among them
    enter as the mask token).
  """
  noise = jax.random.uniform(rng, (batch, length))
  ranks = jnp.argsort(jnp.argsort(noise, axis=1), axis=1)  # 0: lowest noise
  ratio = jnp.broadcast_to(jnp.asarray(ratio, jnp.float32), (batch,))
  masked_count = jnp.ceil(length * ratio - 1e-6).astype(jnp.int32)
  mask = ranks < masked_count[:, None]
  dropped = ranks < num_dropped(length, min_ratio)
  kept = jnp.argsort(dropped, axis=1, stable=True)
  return mask, kept[:, :length - num_dropped(length, min_ratio)].astype(
      jnp.int32)
