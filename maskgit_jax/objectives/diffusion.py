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


def respaced_levels(total: int, steps: int) -> np.ndarray:
  """int ``[steps]``: ``steps`` evenly spaced training levels of ``0 ..
  total - 1``, ascending, the first and last always kept."""
  if not 1 <= steps <= total:
    raise ValueError(f"steps must lie in [1, {total}], got {steps}")
  return np.unique(np.round(np.linspace(0, total - 1, steps)).astype(int))


def respace(alpha_bars: np.ndarray, steps: int) -> np.ndarray:
  """The ``alpha_bars`` of ``steps`` evenly spaced training steps (the last
  one always kept): a shorter chain over the same noise levels."""
  return alpha_bars[respaced_levels(len(alpha_bars), steps)]


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
         temperature: float = 1.0, clip_x0: float | None = None
         ) -> jax.Array:
  """One ancestral (DDPM) step from ``x_t`` to ``x_{t-1}``.

  The posterior mean ``(x_t - beta / sqrt(1 - alpha_bar) * epsilon) /
  sqrt(1 - beta)`` with ``beta = 1 - alpha_bar / alpha_bar_prev``, plus
  ``temperature`` times its standard deviation ``sqrt(beta (1 -
  alpha_bar_prev) / (1 - alpha_bar))`` times fresh noise (none on the last
  step, ``alpha_bar_prev = 1``). The noise levels may be traced: one
  compiled step serves a whole chain.

  ``clip_x0``: when set, the same mean is computed from the clean token
  the noise implies, ``x0 = (x_t - sqrt(1 - alpha_bar) epsilon) /
  sqrt(alpha_bar)``, clipped to ``[-clip_x0, clip_x0]`` (DDPM's
  ``clip_denoised``). The cosine schedule's last level (``alpha_bar`` 2e-9,
  1e-5 of the level before) multiplies an error in ``epsilon`` by about
  300 in the first step of a respaced chain; a clip bounds it. MAR does not
  clip (its head is trained far longer); the default follows MAR.
  """
  alpha_bar = jnp.asarray(alpha_bar, jnp.float32)
  alpha_bar_prev = jnp.asarray(alpha_bar_prev, jnp.float32)
  beta = 1.0 - alpha_bar / alpha_bar_prev
  if clip_x0 is None:
    mean = (x_t - beta / jnp.sqrt(1.0 - alpha_bar) * epsilon) / jnp.sqrt(
        1.0 - beta)
  else:
    x0 = jnp.clip((x_t - jnp.sqrt(1.0 - alpha_bar) * epsilon) /
                  jnp.sqrt(alpha_bar), -clip_x0, clip_x0)
    mean = (jnp.sqrt(alpha_bar_prev) * beta * x0 +
            jnp.sqrt(1.0 - beta) * (1.0 - alpha_bar_prev) * x_t
            ) / (1.0 - alpha_bar)
  std = jnp.sqrt(beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar))
  return mean + temperature * std * jax.random.normal(rng, x_t.shape)


def sample(rng: jax.Array, predict_epsilon, shape: tuple[int, ...],
           alpha_bars: np.ndarray, steps: int, temperature: float = 1.0,
           clip_x0: float | None = None) -> jax.Array:
  """Ancestral sampling over ``steps`` respaced levels, in a ``fori_loop``.

  Args:
    rng: PRNG key.
    predict_epsilon: ``(x_t [shape], level int32 []) -> epsilon [shape]``,
      ``level`` the training index ``0 .. T-1`` of ``alpha_bars``.
    shape: of the tokens, e.g. ``[batch, C]``.
    alpha_bars: the training schedule ``[T]`` (:func:`cosine_alpha_bars`).
    steps: the chain's length (MAR samples with 100).
    temperature: scales the noise of every step (MAR's tau).
    clip_x0: see :func:`step`.

  Returns:
    float32 ``[shape]``: ``x_0``.
  """
  levels = respaced_levels(len(alpha_bars), steps)
  bars = jnp.asarray(alpha_bars[levels], jnp.float32)
  prev = jnp.concatenate([jnp.ones((1,), jnp.float32), bars[:-1]])
  levels = jnp.asarray(levels, jnp.int32)
  start_rng, rng = jax.random.split(rng)

  def body(i, x):
    k = len(levels) - 1 - i  # from the noisiest level down
    eps = predict_epsilon(x, levels[k])
    return step(jax.random.fold_in(rng, i), x, eps, bars[k], prev[k],
                temperature, clip_x0)
  return jax.lax.fori_loop(0, len(levels), body,
                           jax.random.normal(start_rng, shape, jnp.float32))
