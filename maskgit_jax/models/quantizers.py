"""Quantizers of the VQ-VAE -> VQGAN -> MaskGIT lineage.

Each maps encoder features ``[..., d]`` to ``(quantized [..., d], aux)``
with ``aux["ids"]`` (int ``[...]``), ``aux["codebook_features"]`` (the
features in the space where codes are compared), and, in training, its
losses already weighted (``commitment_loss``, ``codebook_loss``,
``entropy_loss``, ``quantizer_loss`` = their sum); ``lookup(ids)`` gives
the decoder's input for ids. Gradients reach the encoder straight through.

* :class:`VectorQuantizer`: nearest code of a learned codebook (VQ-VAE;
  the official MaskGIT tokenizer, parameter ``quantizer/codebook``). With
  ``ema=True`` the codebook follows exponential moving averages of the
  features assigned to each code (VQ-VAE's appendix, with Laplace-smoothed
  counts) instead of a codebook loss: see :func:`ema_codebook_update`,
  which the train step applies.
* :class:`FactorizedQuantizer`: ViT-VQGAN's factorized codes: features are
  projected to a low dimension and l2-normalised before the lookup (cosine
  similarity), and projected back for the decoder.
* :class:`LookupFreeQuantizer`: MAGVIT-v2 / MaskBit's LFQ: the code is the
  sign pattern of a ``log2(codebook_size)``-dimensional latent, no codebook.
* "kl": not a quantizer but the VAE's Gaussian posterior
  (:class:`maskgit_jax.models.gaussian_posterior.GaussianPosterior`):
  continuous latents, no ids (:data:`CONTINUOUS`).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.models import gaussian_posterior

Dtype = Any
QUANTIZERS = ("vq", "vq_ema", "factorized", "lfq", "kl")
CONTINUOUS = ("kl",)  # bottlenecks without token ids


def squared_distances(x: jax.Array, codebook: jax.Array) -> jax.Array:
  """``|x - c|^2`` for every row: ``[n, d]``, ``[k, d]`` -> ``[n, k]`` (float32).

  Uses ``|x|^2 - 2 x.c + |c|^2`` as the official code does (so ids agree at
  near ties), at the highest matmul precision.
  """
  x = x.astype(jnp.float32)
  codebook = codebook.astype(jnp.float32)
  x2 = jnp.sum(x**2, axis=1, keepdims=True)
  c2 = jnp.sum(codebook**2, axis=1)[None, :]
  xc = jnp.matmul(x, codebook.T, precision=jax.lax.Precision.HIGHEST)
  return x2 - 2 * xc + c2


def entropy_loss(affinity: jax.Array, *, temperature: float = 1.0,
                 loss_type: str = "softmax") -> jax.Array:
  """Per-sample entropy minus batch-average entropy of code assignments.

  Minimising it makes each position pick one code confidently (low sample
  entropy) while spreading the batch over the whole codebook (high average
  entropy): the official tokenizer's codebook-usage regulariser.

  Args:
    affinity: ``[..., k]`` scores, higher = closer (the official code uses
      ``-distance``).
    temperature: softmax temperature (official: 0.01).
    loss_type: "softmax" or "argmax" (straight-through one-hot targets).

  Returns:
    float32 scalar.
  """
  if loss_type not in ("softmax", "argmax"):
    raise ValueError(f"loss_type must be 'softmax' or 'argmax', got {loss_type!r}")
  flat = affinity.reshape(-1, affinity.shape[-1]).astype(jnp.float32)
  flat = flat / temperature
  probs = jax.nn.softmax(flat, axis=-1)
  log_probs = jax.nn.log_softmax(flat + 1e-5, axis=-1)
  if loss_type == "softmax":
    targets = probs
  else:
    one_hot = jax.nn.one_hot(jnp.argmax(flat, -1), flat.shape[-1])
    targets = probs - jax.lax.stop_gradient(probs - one_hot)
  avg_probs = jnp.mean(targets, axis=0)
  avg_entropy = -jnp.sum(avg_probs * jnp.log(avg_probs + 1e-5))
  sample_entropy = -jnp.mean(jnp.sum(targets * log_probs, axis=-1))
  return sample_entropy - avg_entropy


class VectorQuantizer(nn.Module):
  """Nearest-code quantisation with a learned codebook ``[codebook_size, dim]``.

  In training mode it returns straight-through quantised features (the
  forward value is the code, the gradient flows to the encoder as identity)
  and the VQ losses; in eval mode the exact codebook rows.
  """

  codebook_size: int
  embedding_dim: int
  commitment_cost: float = 0.25
  entropy_loss_ratio: float = 0.1
  entropy_temperature: float = 0.01
  entropy_loss_type: str = "softmax"
  ema: bool = False
  param_dtype: Dtype = jnp.float32

  def setup(self):
    self.codebook = self.param(
        "codebook", nn.with_logical_partitioning(
            nn.initializers.variance_scaling(1.0, "fan_in", "uniform"),
            ("codebook", "code_dim")),
        (self.codebook_size, self.embedding_dim), self.param_dtype)
    if self.ema:
      # Running statistics, stored beside the codebook so that every
      # checkpoint reader sees one params tree; they get no gradient (the
      # train step overwrites them, see ema_codebook_update).
      self.ema_cluster_size = self.param(
          "ema_cluster_size", nn.with_logical_partitioning(
              nn.initializers.ones, ("codebook",)),
          (self.codebook_size,), jnp.float32)
      self.ema_embed_sum = self.param(
          "ema_embed_sum", nn.with_logical_partitioning(
              nn.initializers.zeros, ("codebook", "code_dim")),
          (self.codebook_size, self.embedding_dim), jnp.float32)

  def __call__(self, x: jax.Array, train: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Quantises ``x [..., dim]``.

    Returns:
      ``(quantized [..., dim] float32, aux)``; aux holds ``ids [...]`` and,
      when ``train``, ``commitment_loss``, ``codebook_loss``,
      ``entropy_loss`` (already weighted) and ``quantizer_loss`` (their sum).
    """
    x = x.astype(jnp.float32)
    flat = x.reshape(-1, x.shape[-1])
    distances = squared_distances(flat, self.codebook)
    ids = jnp.argmin(distances, axis=-1).reshape(x.shape[:-1])
    quantized = self.lookup(ids)
    aux = {"ids": ids, "codebook_features": x}
    if train:
      entropy = None
      if self.entropy_loss_ratio:
        entropy = self.entropy_loss_ratio * entropy_loss(
            -distances, temperature=self.entropy_temperature,
            loss_type=self.entropy_loss_type)
      # With ema the codebook moves by averages, not by a loss.
      aux.update(_vq_losses(x, quantized, self.commitment_cost, entropy,
                            codebook=not self.ema))
      quantized = x + jax.lax.stop_gradient(quantized - x)
    return quantized, aux

  def lookup(self, ids: jax.Array) -> jax.Array:
    """Code ids ``[...]`` -> codebook rows ``[..., dim]`` (exact, float32)."""
    return jnp.take(self.codebook, ids, axis=0).astype(jnp.float32)


def ema_codebook_update(cluster_size: jax.Array, embed_sum: jax.Array,
                        ids: jax.Array, features: jax.Array, *,
                        decay: float = 0.99, epsilon: float = 1e-5
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One EMA step of a VQ-VAE codebook.

  ``N_k <- decay N_k + (1 - decay) n_k`` and ``m_k <- decay m_k + (1 -
  decay) sum_{i: id_i = k} x_i``; the codebook is ``m_k / N~_k`` with the
  Laplace-smoothed counts ``N~_k = (N_k + eps) / (n + K eps) n``, ``n =
  sum_k N_k`` (so an unused code keeps a finite row).

  Args:
    cluster_size: float32 ``[K]``, the running counts ``N``.
    embed_sum: float32 ``[K, d]``, the running sums ``m``.
    ids: int ``[...]`` assignments of this batch.
    features: ``[..., d]`` the features they were assigned from.

  Returns:
    ``(cluster_size, embed_sum, codebook)``, float32.
  """
  k = cluster_size.shape[0]
  flat = features.reshape(-1, features.shape[-1]).astype(jnp.float32)
  one_hot = jax.nn.one_hot(ids.reshape(-1), k, dtype=jnp.float32)
  counts = one_hot.sum(0)
  sums = jnp.matmul(one_hot.T, flat, precision=jax.lax.Precision.HIGHEST)
  cluster_size = decay * cluster_size + (1 - decay) * counts
  embed_sum = decay * embed_sum + (1 - decay) * sums
  n = cluster_size.sum()
  smoothed = (cluster_size + epsilon) / (n + k * epsilon) * n
  return cluster_size, embed_sum, embed_sum / smoothed[:, None]


def _l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True),
                                       eps * eps))


def _vq_losses(x, quantized, commitment_cost, entropy=None, *,
               codebook: bool = True) -> dict[str, jax.Array]:
  """The quantizer losses of ``aux``; ``codebook=False`` for quantizers
  whose codes do not learn from a loss (EMA averages, LFQ's fixed signs)."""
  commitment = commitment_cost * jnp.mean(
      (jax.lax.stop_gradient(quantized) - x) ** 2)
  entropy = jnp.zeros((), jnp.float32) if entropy is None else entropy
  if not codebook:
    return dict(commitment_loss=commitment,
                codebook_loss=jnp.zeros((), jnp.float32),
                entropy_loss=entropy, quantizer_loss=commitment + entropy)
  codebook_loss = jnp.mean((quantized - jax.lax.stop_gradient(x)) ** 2)
  return dict(commitment_loss=commitment, codebook_loss=codebook_loss,
              entropy_loss=entropy,
              quantizer_loss=commitment + codebook_loss + entropy)


class FactorizedQuantizer(nn.Module):
  """ViT-VQGAN's factorized, l2-normalised code lookup.

  Features ``[..., d]`` are projected to ``factorized_dim`` and normalised;
  the nearest (cosine) normalised code is looked up and projected back to
  ``d``. Params: ``proj_in``, ``codebook [K, factorized_dim]``, ``proj_out``.
  """

  codebook_size: int
  embedding_dim: int
  factorized_dim: int = 8
  commitment_cost: float = 0.25
  entropy_loss_ratio: float = 0.0
  entropy_temperature: float = 0.01
  entropy_loss_type: str = "softmax"
  param_dtype: Dtype = jnp.float32

  def setup(self):
    dense = lambda features, names, name: nn.Dense(
        features, param_dtype=self.param_dtype, name=name,
        kernel_init=nn.with_logical_partitioning(
            nn.initializers.lecun_normal(), names),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                               names[1:]))
    self.proj_in = dense(self.factorized_dim, ("conv_in", "code_dim"),
                         "proj_in")
    self.proj_out = dense(self.embedding_dim, ("code_dim", "conv_out"),
                          "proj_out")
    self.codebook = self.param(
        "codebook", nn.with_logical_partitioning(
            nn.initializers.normal(1.0), ("codebook", "code_dim")),
        (self.codebook_size, self.factorized_dim), self.param_dtype)

  def __call__(self, x: jax.Array, train: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    z = _l2_normalize(self.proj_in(x.astype(jnp.float32)).astype(jnp.float32))
    codes = _l2_normalize(self.codebook.astype(jnp.float32))
    flat = z.reshape(-1, z.shape[-1])
    similarity = jnp.matmul(flat, codes.T,
                            precision=jax.lax.Precision.HIGHEST)
    ids = jnp.argmax(similarity, -1).reshape(z.shape[:-1])
    quantized = jnp.take(codes, ids, axis=0)
    aux = {"ids": ids, "codebook_features": z}
    if train:
      entropy = None
      if self.entropy_loss_ratio:
        entropy = self.entropy_loss_ratio * entropy_loss(
            similarity, temperature=self.entropy_temperature,
            loss_type=self.entropy_loss_type)
      aux.update(_vq_losses(z, quantized, self.commitment_cost, entropy))
      quantized = z + jax.lax.stop_gradient(quantized - z)
    return self.proj_out(quantized).astype(jnp.float32), aux

  def lookup(self, ids: jax.Array) -> jax.Array:
    codes = _l2_normalize(self.codebook.astype(jnp.float32))
    return self.proj_out(jnp.take(codes, ids, axis=0)).astype(jnp.float32)


def lfq_codes(num_bits: int) -> jax.Array:
  """float32 ``[2**num_bits, num_bits]``: code ``k``'s bit ``i`` is ``+1``
  when bit ``i`` of ``k`` is set, else ``-1`` (bit 0 least significant)."""
  k = jnp.arange(2 ** num_bits)[:, None]
  bits = (k >> jnp.arange(num_bits)[None, :]) & 1
  return jnp.where(bits == 1, 1.0, -1.0).astype(jnp.float32)


def lfq_entropy_terms(z: jax.Array, *, temperature: float = 0.01
                      ) -> tuple[jax.Array, jax.Array]:
  """LFQ's per-sample entropy and batch (codebook) entropy, in nats.

  ``q(k | z) = softmax_k(-|z - c_k|^2 / temperature)`` over every code
  ``c_k`` of :func:`lfq_codes`; returns ``(mean_z H(q(.|z)),
  H(mean_z q(.|z)))``. The LFQ loss minimises the first and maximises the
  second.
  """
  flat = z.reshape(-1, z.shape[-1]).astype(jnp.float32)
  codes = lfq_codes(flat.shape[-1])
  logits = -squared_distances(flat, codes) / temperature
  log_q = jax.nn.log_softmax(logits, -1)
  q = jnp.exp(log_q)
  sample = -jnp.mean(jnp.sum(q * log_q, -1))
  mean_q = q.mean(0)
  batch = -jnp.sum(mean_q * jnp.log(jnp.maximum(mean_q, 1e-12)))
  return sample, batch


class LookupFreeQuantizer(nn.Module):
  """MAGVIT-v2 / MaskBit lookup-free quantization (no codebook params).

  The latent has ``log2(codebook_size)`` channels; its code is the sign
  pattern (``+1`` where the latent is > 0), its id the bits read as a
  binary number (:func:`lfq_codes`). Training adds the commitment loss and
  ``entropy_loss_ratio * (sample entropy - batch entropy)``.
  """

  codebook_size: int
  embedding_dim: int
  commitment_cost: float = 0.25
  entropy_loss_ratio: float = 0.1
  entropy_temperature: float = 0.01

  def setup(self):
    bits = int(round(math.log2(self.codebook_size)))
    if 2 ** bits != self.codebook_size or bits != self.embedding_dim:
      raise ValueError(
          f"lfq needs codebook_size = 2**embedding_dim, got codebook_size "
          f"{self.codebook_size} and embedding_dim {self.embedding_dim}")

  def __call__(self, x: jax.Array, train: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    x = x.astype(jnp.float32)
    positive = x > 0
    quantized = jnp.where(positive, 1.0, -1.0)
    weights = 2 ** jnp.arange(x.shape[-1])
    ids = jnp.sum(positive * weights, -1).astype(jnp.int32)
    aux = {"ids": ids, "codebook_features": x}
    if train:
      entropy = None
      if self.entropy_loss_ratio:
        sample, batch = lfq_entropy_terms(
            x, temperature=self.entropy_temperature)
        entropy = self.entropy_loss_ratio * (sample - batch)
      aux.update(_vq_losses(x, quantized, self.commitment_cost, entropy,
                            codebook=False))
      quantized = x + jax.lax.stop_gradient(quantized - x)
    return quantized, aux

  def lookup(self, ids: jax.Array) -> jax.Array:
    return jnp.take(lfq_codes(self.embedding_dim), ids, axis=0)


def make_quantizer(name: str, *, codebook_size: int, embedding_dim: int,
                   commitment_cost: float, entropy_loss_ratio: float,
                   entropy_temperature: float, entropy_loss_type: str,
                   factorized_dim: int, param_dtype: Dtype,
                   kl_weight: float = 1e-6) -> nn.Module:
  """The quantizer ``name`` (one of :data:`QUANTIZERS`).

  Raises:
    ValueError: for an unknown name.
  """
  common = dict(codebook_size=codebook_size, embedding_dim=embedding_dim,
                commitment_cost=commitment_cost,
                entropy_loss_ratio=entropy_loss_ratio,
                entropy_temperature=entropy_temperature)
  if name in ("vq", "vq_ema"):
    return VectorQuantizer(entropy_loss_type=entropy_loss_type,
                           ema=name == "vq_ema", param_dtype=param_dtype,
                           **common)
  if name == "factorized":
    return FactorizedQuantizer(entropy_loss_type=entropy_loss_type,
                               factorized_dim=factorized_dim,
                               param_dtype=param_dtype, **common)
  if name == "lfq":
    return LookupFreeQuantizer(**common)
  if name == "kl":
    return gaussian_posterior.GaussianPosterior(
        embedding_dim=embedding_dim, kl_weight=kl_weight,
        param_dtype=param_dtype)
  raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {name!r}")
