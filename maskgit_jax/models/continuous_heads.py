"""Per-token heads for continuous tokens: MAR's diffusion MLP, GIVT's mixture.

A masked generator over continuous tokens (a VAE's latents) cannot end in
a softmax over codes. Its transformer emits one condition vector ``z`` per
position, and a small head turns ``z`` into a distribution over the token
``x [C]``:

* :class:`DiffusionHead` (MAR, Li et al. 2024, ``SimpleMLPAdaLN``): predicts
  the noise ``epsilon`` of a noisy token ``x_t`` at noise level ``t`` given
  ``z``: the noisy token projected to the width, the level's sinusoidal
  embedding through an MLP plus the projected condition as ``c``, ``depth``
  residual blocks (LayerNorm without affine, shift / scale / gate from
  ``SiLU(c)``, Linear-SiLU-Linear, gated residual) and a final modulated
  LayerNorm and projection. The modulations and the output projection start
  at zero (the head predicts 0 at init). Training and sampling are
  :mod:`maskgit_jax.objectives.diffusion`. **Departure from MAR**: the head
  predicts epsilon only; MAR also learns the reverse variance (a VLB term).
  Sampling here uses the posterior variance (see ``diffusion.step``).
* :class:`MixtureHead` (GIVT, Tschannen et al.): one linear layer to the
  parameters of a ``k``-component diagonal Gaussian mixture
  (:mod:`maskgit_jax.objectives.gaussian_mixture`).

Parameters carry logical axis names (``embed``, ``mlp``, ``code_dim``,
``norm``) so that the transformer's sharding rules apply.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.objectives import gaussian_mixture

_init = nn.initializers.xavier_uniform()
_zeros = nn.initializers.zeros
FREQUENCY_DIM = 256  # the noise level's sinusoidal embedding (MAR's)


def _dense(features: int, names: tuple[str, str], name: str,
           init=_init) -> nn.Dense:
  return nn.Dense(features, kernel_init=nn.with_logical_partitioning(
      init, names), bias_init=nn.with_logical_partitioning(_zeros, names[1:]),
                  name=name)


def level_embedding(t: jax.Array, dim: int = FREQUENCY_DIM,
                    max_period: float = 10_000.0) -> jax.Array:
  """float32 ``[..., dim]``: ``[cos(t f), sin(t f)]`` at frequencies ``f =
  max_period^(-i / (dim / 2))`` (DiT's and MAR's timestep embedding)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32)
                  / half)
  args = jnp.asarray(t, jnp.float32)[..., None] * freqs
  return jnp.concatenate([jnp.cos(args), jnp.sin(args)], -1)


def _plain_norm(x: jax.Array) -> jax.Array:
  return nn.LayerNorm(epsilon=1e-6, use_scale=False, use_bias=False)(x)


class DiffusionHead(nn.Module):
  """``(x_t [..., C], t [...], z [..., D]) -> epsilon [..., C]`` (float32).

  Attributes:
    channels: ``C``, the token's channels.
    width: the MLP's width.
    depth: residual blocks.
  """

  channels: int
  width: int = 256
  depth: int = 3

  @nn.compact
  def __call__(self, x_t: jax.Array, t: jax.Array, z: jax.Array
               ) -> jax.Array:
    w = self.width
    x = _dense(w, ("code_dim", "mlp"), "input")(x_t.astype(jnp.float32))
    level = _dense(w, ("norm", "mlp"), "level_in")(level_embedding(t))
    level = _dense(w, ("mlp", "embed"), "level_out")(nn.silu(level))
    c = nn.silu(level + _dense(w, ("embed", "mlp"), "condition")(z))
    for i in range(self.depth):
      shift, scale, gate = jnp.split(
          _dense(3 * w, ("mlp", "embed"), f"block_{i}_modulation", _zeros)(c),
          3, -1)
      h = _plain_norm(x) * (1 + scale) + shift
      h = _dense(w, ("mlp", "embed"), f"block_{i}_in")(h)
      h = _dense(w, ("embed", "mlp"), f"block_{i}_out")(nn.silu(h))
      x = x + gate * h
    shift, scale = jnp.split(
        _dense(2 * w, ("mlp", "embed"), "final_modulation", _zeros)(c), 2, -1)
    x = _plain_norm(x) * (1 + scale) + shift
    return _dense(self.channels, ("mlp", "code_dim"), "output", _zeros)(x)


class MixtureHead(nn.Module):
  """``z [..., D] -> (logits [..., k], means [..., k, C], scales [..., k,
  C])``: GIVT's linear head onto a diagonal Gaussian mixture."""

  channels: int
  num_mixtures: int = 16

  @nn.compact
  def __call__(self, z: jax.Array):
    raw = _dense(gaussian_mixture.num_outputs(self.num_mixtures,
                                              self.channels),
                 ("embed", "code_dim"), "output")(z)
    return gaussian_mixture.split(raw.astype(jnp.float32), self.num_mixtures,
                                  self.channels)


HEADS = ("diffusion", "mixture")


def make_head(head: str, channels: int, *, head_width: int = 256,
              head_depth: int = 3, num_mixtures: int = 16):
  """The head a ``config.continuous`` section names: ``"diffusion"``
  (:class:`DiffusionHead`) or ``"mixture"`` (:class:`MixtureHead`)."""
  if head == "diffusion":
    return DiffusionHead(channels, head_width, head_depth)
  if head == "mixture":
    return MixtureHead(channels, num_mixtures)
  raise ValueError(f"head {head!r}; expected one of {HEADS}")
