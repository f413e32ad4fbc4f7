"""Gaussian diffusion per continuous token: MAR's head's noise process.

MAR (Li et al., 2024) models each continuous token with a small diffusion
model conditioned on the transformer's output: the cosine noise schedule of
improved DDPM over ``T`` training steps, epsilon prediction, and ancestral
(DDPM) sampling over a respaced subset of the steps, with a temperature on
the noise. These are the schedule, the forward process, the loss target and
one sampler step, as pure functions; the network that predicts epsilon
lives with the models.

Indices: ``alpha_bars[t]`` for ``t = 0 .. T-1`` is the signal share after
step ``t + 1`` (``alpha_bar`` of improved DDPM at ``(t + 1) / T``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def cosine_alpha_bars(num_steps: int = 1000, offset: float = 0.008,
                      max_beta: float = 0.999) -> np.ndarray:
  """float64 ``[T]``: ``prod (1 - beta)`` with ``beta_t = min(1 -
  f(t / T) / f((t - 1) / T), max_beta)`` and ``f(u) = cos((u + s) / (1 + s)
  * pi / 2)^2`` (improved DDPM's cosine schedule)."""
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  f = lambda u: math.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2
  betas = [min(1 - f((t + 1) / num_steps) / f(t / num_steps), max_beta)
           for t in range(num_steps)]
  return np.cumprod(1.0 - np.asarray(betas, np.float64))


def respace(alpha_bars: np.ndarray, steps: int) -> np.ndarray:
  """The ``alpha_bars`` of ``steps`` evenly spaced training steps (the last
  one always kept): a shorter chain over the same noise levels."""
  total = len(alpha_bars)
  if not 1 <= steps <= total:
    raise ValueError(f"steps must lie in [1, {total}], got {steps}")
  keep = np.unique(np.round(np.linspace(0, total - 1, steps)).astype(int))
  return alpha_bars[keep]


def add_noise(x0: jax.Array, noise: jax.Array, alpha_bar: jax.Array
              ) -> jax.Array:
  """``x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise`` (``alpha_bar``
  broadcast against ``x0 [..., d]``)."""
  alpha_bar = jnp.asarray(alpha_bar, jnp.float32)
  return jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1.0 - alpha_bar) * noise


def epsilon_loss(predicted: jax.Array, noise: jax.Array) -> jax.Array:
  """Mean squared error over the channels, per token: ``[...]``."""
  return jnp.mean(jnp.square(predicted.astype(jnp.float32) - noise), -1)


def step(rng: jax.Array, x_t: jax.Array, epsilon: jax.Array,
         alpha_bar: jax.Array, alpha_bar_prev: jax.Array,
         temperature: float = 1.0) -> jax.Array:
  """One ancestral (DDPM) step from ``x_t`` to ``x_{t-1}``.

  The posterior mean ``(x_t - beta / sqrt(1 - alpha_bar) * epsilon) /
  sqrt(1 - beta)`` with ``beta = 1 - alpha_bar / alpha_bar_prev``, plus
  ``temperature`` times its standard deviation ``sqrt(beta (1 -
  alpha_bar_prev) / (1 - alpha_bar))`` times fresh noise (none on the last
  step, ``alpha_bar_prev = 1``). The noise levels may be traced: one
  compiled step serves a whole chain.
  """
  alpha_bar = jnp.asarray(alpha_bar, jnp.float32)
  alpha_bar_prev = jnp.asarray(alpha_bar_prev, jnp.float32)
  beta = 1.0 - alpha_bar / alpha_bar_prev
  mean = (x_t - beta / jnp.sqrt(1.0 - alpha_bar) * epsilon) / jnp.sqrt(
      1.0 - beta)
  std = jnp.sqrt(beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar))
  return mean + temperature * std * jax.random.normal(rng, x_t.shape)
