"""A Gaussian mixture per continuous token: GIVT's head, as pure functions.

A head's raw output per token, ``[..., k + 2 k d]``, parameterises a mixture
of ``k`` Gaussians with diagonal covariance over a ``d``-channel token:
mixture logits ``[..., k]``, means ``[..., k, d]`` and scales ``[..., k, d]``
(made positive by the square-plus map ``(x + sqrt(x^2 + 4)) / 2``, which
grows linearly rather than exponentially). Training minimises the negative
log-density of the true token (:func:`log_prob`); decoding samples from it
(:func:`sample`) and can rank tokens by their density.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def num_outputs(num_mixtures: int, dim: int) -> int:
  """The head's output width per token: ``k + 2 k d``."""
  return num_mixtures * (1 + 2 * dim)


def square_plus(x: jax.Array) -> jax.Array:
  """``(x + sqrt(x^2 + 4)) / 2``: positive, smooth, ~x for large x."""
  return 0.5 * (x + jnp.sqrt(jnp.square(x) + 4.0))


def split(raw: jax.Array, num_mixtures: int, dim: int
          ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``raw [..., k + 2 k d]`` -> ``(logits [..., k], means [..., k, d],
  scales [..., k, d])``, float32.

  Raises:
    ValueError: the last axis is not ``k + 2 k d`` wide.
  """
  k, d = num_mixtures, dim
  if raw.shape[-1] != num_outputs(k, d):
    raise ValueError(f"a mixture of {k} Gaussians over {d} channels needs "
                     f"{num_outputs(k, d)} outputs per token, got "
                     f"{raw.shape[-1]}")
  raw = raw.astype(jnp.float32)
  logits = raw[..., :k]
  rest = raw[..., k:].reshape(raw.shape[:-1] + (k, 2, d))
  return logits, rest[..., 0, :], square_plus(rest[..., 1, :])


def log_prob(x: jax.Array, logits: jax.Array, means: jax.Array,
             scales: jax.Array) -> jax.Array:
  """log-density of tokens ``x [..., d]`` under the mixture: ``[...]``.

  ``log sum_k softmax(logits)_k prod_d N(x_d; means_kd, scales_kd^2)``,
  float32, summed over the channels in log space (no underflow).
  """
  x = x.astype(jnp.float32)[..., None, :]  # [..., 1, d]
  z = (x - means) / scales
  per_component = jnp.sum(-0.5 * jnp.square(z) - jnp.log(scales)
                          - _HALF_LOG_2PI, axis=-1)  # [..., k]
  return jax.nn.logsumexp(jax.nn.log_softmax(logits, -1) + per_component, -1)


def sample(rng: jax.Array, logits: jax.Array, means: jax.Array,
           scales: jax.Array, temperature: float = 1.0) -> jax.Array:
  """One token per position, ``[..., d]``: a component drawn from the
  mixture weights, then a Gaussian draw with its scale times
  ``temperature`` (0: the chosen component's mean)."""
  pick_rng, noise_rng = jax.random.split(rng)
  component = jax.random.categorical(pick_rng, logits, axis=-1)  # [...]
  take = lambda a: jnp.take_along_axis(a, component[..., None, None],
                                       axis=-2)[..., 0, :]
  noise = jax.random.normal(noise_rng, means.shape[:-2] + means.shape[-1:])
  return take(means) + temperature * take(scales) * noise
