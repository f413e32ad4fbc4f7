"""The VAE's bottleneck: a diagonal Gaussian posterior over continuous latents.

The root of the VQ-VAE -> VQGAN -> MaskGIT lineage (Kingma & Welling's VAE)
as latent diffusion and MAR use it for a tokenizer: a linear projection of
the encoder's features to a mean and a log-variance per latent channel; in
training a sample ``mean + exp(logvar / 2) * eps`` and its KL divergence to
N(0, I), weighted by ``kl_weight`` (small: 1e-6 in latent diffusion's KL
autoencoders); in eval the mean. The latents are the decoder's input, so
there are no token ids: the tokenizer is continuous.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
# Latent diffusion's clamp of the log-variance (keeps exp() finite).
LOGVAR_RANGE = (-30.0, 20.0)


def kl_divergence(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """``KL(N(mean, exp(logvar)) || N(0, I))`` per sample, float32 ``[b]``:
  ``0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)`` over every axis but the
  first of ``mean, logvar [b, ...]``."""
  mean = mean.astype(jnp.float32)
  logvar = logvar.astype(jnp.float32)
  terms = jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar
  return 0.5 * jnp.sum(terms, axis=tuple(range(1, mean.ndim)))


class GaussianPosterior(nn.Module):
  """Encoder features ``[..., d]`` -> latents ``[..., embedding_dim]``.

  Attributes:
    embedding_dim: latent channels (the decoder's input width).
    kl_weight: the KL term's weight in ``aux["quantizer_loss"]``.
  """

  embedding_dim: int
  kl_weight: float = 1e-6
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns ``(latents, aux)``: aux holds ``mean``, ``logvar`` and
    ``codebook_features`` (the mean) and, when ``train``, ``kl_loss`` (the
    batch mean of :func:`kl_divergence`), ``quantizer_loss``
    (``kl_weight * kl_loss``) and zero VQ losses. Training samples the
    latents with the ``"sample"`` rng stream."""
    moments = nn.Dense(
        2 * self.embedding_dim, dtype=jnp.float32,
        param_dtype=self.param_dtype,
        kernel_init=nn.with_logical_partitioning(
            nn.initializers.lecun_normal(), ("conv_in", "code_dim")),
        bias_init=nn.with_logical_partitioning(
            nn.initializers.zeros, ("code_dim",)),
        name="moments")(x.astype(jnp.float32))
    mean, logvar = jnp.split(moments, 2, axis=-1)
    logvar = jnp.clip(logvar, *LOGVAR_RANGE)
    aux = {"mean": mean, "logvar": logvar, "codebook_features": mean}
    if not train:
      return mean, aux
    noise = jax.random.normal(self.make_rng("sample"), mean.shape)
    latents = mean + jnp.exp(0.5 * logvar) * noise
    kl = jnp.mean(kl_divergence(mean, logvar))
    zero = jnp.zeros((), jnp.float32)
    aux.update(kl_loss=kl, commitment_loss=zero, codebook_loss=zero,
               entropy_loss=zero, quantizer_loss=self.kl_weight * kl)
    return latents, aux
