"""The MaskGIT VQGAN tokenizer: encoder, vector quantizer, decoder.

Module and parameter names mirror google-research/maskgit's ``VQVAE`` so the
released tokenizer checkpoints apply unchanged (``encoder/...``,
``quantizer/codebook``, ``decoder/...``). Numerics follow the official code:
no attention, GroupNorm (32 groups, eps 1e-6) + swish, average-pool
downsampling, nearest upsampling, images NHWC in ``[0, 1]``, decoder output
not clipped.

The official ResBlock applies its 1x1 channel-changing shortcut to the
block's *output* ``h`` (``out = h + conv1x1(h)``), not to its input; the
released weights were trained that way, so ``shortcut="official"`` is the
default. ``shortcut="input"`` gives the usual residual ``conv1x1(x) + h``.

Precision: convolutions run in ``dtype``; the nearest-code search is always
float32 at the highest matmul precision, so token ids do not depend on the
activation dtype or on the accelerator's default matmul precision.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.models import quantizers
# The official quantizer and its helpers, importable from here as before.
from maskgit_jax.models.quantizers import (  # pylint: disable=unused-import
    VectorQuantizer, entropy_loss, squared_distances)

Dtype = Any

GROUPNORM_GROUPS = 32
GROUPNORM_EPSILON = 1e-6
SHORTCUTS = ("official", "input")

_zeros = nn.initializers.zeros
_ones = nn.initializers.ones


def _conv(features: int, kernel: int, *, use_bias: bool, dtype: Dtype,
          param_dtype: Dtype, name: str | None = None, strides: int = 1):
  return nn.Conv(
      features, (kernel, kernel), strides=(strides, strides), padding="SAME",
      use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
      kernel_init=nn.with_logical_partitioning(
          nn.initializers.lecun_normal(),
          ("height", "width", "conv_in", "conv_out")),
      bias_init=nn.with_logical_partitioning(_zeros, ("conv_out",)),
      name=name)


def _group_norm(dtype: Dtype, param_dtype: Dtype, name: str | None = None):
  return nn.GroupNorm(
      num_groups=GROUPNORM_GROUPS, epsilon=GROUPNORM_EPSILON, dtype=dtype,
      param_dtype=param_dtype,
      scale_init=nn.with_logical_partitioning(_ones, ("norm",)),
      bias_init=nn.with_logical_partitioning(_zeros, ("norm",)), name=name)


def downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling: ``[b, h, w, c]`` -> ``[b, h/2, w/2, c]``."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling: ``[b, h, w, c]`` -> ``[b, 2h, 2w, c]``."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class ResBlock(nn.Module):
  """GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, plus a shortcut."""

  filters: int
  shortcut: str = "official"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``[b, h, w, c_in]`` -> ``[b, h, w, filters]``."""
    if self.shortcut not in SHORTCUTS:
      raise ValueError(
          f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
    conv = functools.partial(_conv, use_bias=False, dtype=self.dtype,
                             param_dtype=self.param_dtype)
    norm = functools.partial(_group_norm, self.dtype, self.param_dtype)
    h = conv(self.filters, 3)(nn.swish(norm()(x)))
    h = conv(self.filters, 3)(nn.swish(norm()(h)))
    if x.shape[-1] == self.filters:
      return h + x
    if self.shortcut == "official":
      return h + conv(self.filters, 1)(h)
    return h + conv(self.filters, 1)(x)


class Encoder(nn.Module):
  """Images ``[b, H, W, 3]`` in [0, 1] -> features ``[b, H/f, W/f, embedding_dim]``.

  ``f = 2 ** (len(channel_multipliers) - 1)``.
  """

  filters: int
  num_res_blocks: int
  channel_multipliers: Sequence[int]
  embedding_dim: int
  conv_downsample: bool = False
  shortcut: str = "official"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    block = functools.partial(ResBlock, shortcut=self.shortcut, **kw)
    x = _conv(self.filters, 3, use_bias=False, **kw)(x)
    num_levels = len(self.channel_multipliers)
    for level, multiplier in enumerate(self.channel_multipliers):
      filters = self.filters * multiplier
      for _ in range(self.num_res_blocks):
        x = block(filters)(x)
      if level < num_levels - 1:
        if self.conv_downsample:
          x = _conv(filters, 4, use_bias=True, strides=2, **kw)(x)
        else:
          x = downsample(x)
    for _ in range(self.num_res_blocks):
      x = block(filters)(x)
    x = nn.swish(_group_norm(**kw)(x))
    return _conv(self.embedding_dim, 1, use_bias=True, **kw)(x)


class Decoder(nn.Module):
  """Latents ``[b, h, w, embedding_dim]`` -> images ``[b, h*f, w*f, output_dim]``.

  The output is not clipped.
  """

  filters: int
  num_res_blocks: int
  channel_multipliers: Sequence[int]
  output_dim: int = 3
  shortcut: str = "official"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    block = functools.partial(ResBlock, shortcut=self.shortcut, **kw)
    filters = self.filters * self.channel_multipliers[-1]
    x = _conv(filters, 3, use_bias=True, **kw)(x)
    for _ in range(self.num_res_blocks):
      x = block(filters)(x)
    for level in reversed(range(len(self.channel_multipliers))):
      filters = self.filters * self.channel_multipliers[level]
      for _ in range(self.num_res_blocks):
        x = block(filters)(x)
      if level > 0:
        x = _conv(filters, 3, use_bias=True, **kw)(upsample(x))
    x = nn.swish(_group_norm(**kw)(x))
    # For VQGAN's adaptive weight (read with mutable=["intermediates"]).
    self.sow("intermediates", "last_layer_input", x)
    x = _conv(self.output_dim, 3, use_bias=True, **kw)(x)
    return x.astype(jnp.float32)


class VQGAN(nn.Module):
  """The tokenizer: ``encoder`` -> ``quantizer`` -> ``decoder``.

  Attributes:
    filters: base channel count (128 for the released models).
    num_res_blocks: ResBlocks per level (2).
    channel_multipliers: per-level multipliers ((1, 1, 2, 2, 4): factor 16).
    embedding_dim: code dimension (256).
    codebook_size: number of codes (1024).
    conv_downsample: strided 4x4 conv instead of average pooling.
    shortcut: "official" (released weights) or "input"; see module doc.
    commitment_cost, entropy_loss_ratio, entropy_temperature,
      entropy_loss_type: quantizer losses (0.25, 0.1, 0.01, "softmax").
    quantizer_type: "vq" (official), "vq_ema", "factorized", "lfq" or "kl"
      (a VAE: continuous latents of ``embedding_dim`` channels, no ids);
      see :mod:`maskgit_jax.models.quantizers`. Only "vq" reads the
      released checkpoints.
    factorized_dim: the lookup dimension of "factorized".
    kl_weight: the KL term's weight of "kl".
    dtype, param_dtype: activation and parameter dtypes.
  """

  filters: int = 128
  num_res_blocks: int = 2
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  embedding_dim: int = 256
  codebook_size: int = 1024
  conv_downsample: bool = False
  shortcut: str = "official"
  commitment_cost: float = 0.25
  entropy_loss_ratio: float = 0.1
  entropy_temperature: float = 0.01
  entropy_loss_type: str = "softmax"
  quantizer_type: str = "vq"
  factorized_dim: int = 8
  kl_weight: float = 1e-6
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def factor(self) -> int:
    """Pixels per token side."""
    return 2 ** (len(self.channel_multipliers) - 1)

  def setup(self):
    kw = dict(filters=self.filters, num_res_blocks=self.num_res_blocks,
              channel_multipliers=tuple(self.channel_multipliers),
              shortcut=self.shortcut, dtype=self.dtype,
              param_dtype=self.param_dtype)
    self.encoder = Encoder(embedding_dim=self.embedding_dim,
                           conv_downsample=self.conv_downsample, **kw)
    self.quantizer = quantizers.make_quantizer(
        self.quantizer_type, codebook_size=self.codebook_size,
        embedding_dim=self.embedding_dim,
        commitment_cost=self.commitment_cost,
        entropy_loss_ratio=self.entropy_loss_ratio,
        entropy_temperature=self.entropy_temperature,
        entropy_loss_type=self.entropy_loss_type,
        factorized_dim=self.factorized_dim, param_dtype=self.param_dtype,
        kl_weight=self.kl_weight)
    self.decoder = Decoder(**kw)

  @property
  def continuous(self) -> bool:
    """Whether the latents are continuous (a VAE: no token ids)."""
    return self.quantizer_type in quantizers.CONTINUOUS

  def _check_images(self, images: jax.Array):
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(
          f"images must be [batch, height, width, 3], got shape {images.shape}")
    h, w = images.shape[1:3]
    if h % self.factor or w % self.factor:
      raise ValueError(
          f"image size {h}x{w} is not a multiple of the token factor "
          f"{self.factor}")

  def encode(self, images: jax.Array, train: bool = False
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Images ``[b, H, W, 3]`` -> ``(quantized [b, h, w, d], aux)``.

    aux: ``ids [b, h, w]``, ``features`` (pre-quantisation, float32) and,
    when ``train``, the quantizer losses.
    """
    self._check_images(images)
    features = self.encoder(images).astype(jnp.float32)
    quantized, aux = self.quantizer(features, train=train)
    aux["features"] = features
    return quantized, aux

  def encode_to_indices(self, images: jax.Array) -> jax.Array:
    """Images ``[b, H, W, 3]`` in [0, 1] -> int32 token ids ``[b, H/f, W/f]``."""
    if self.continuous:
      raise ValueError(f"a {self.quantizer_type!r} tokenizer has continuous "
                       "latents, not token ids (encode_to_latents)")
    return self.encode(images)[1]["ids"].astype(jnp.int32)

  def encode_to_latents(self, images: jax.Array) -> jax.Array:
    """Images ``[b, H, W, 3]`` in [0, 1] -> float32 latents ``[b, H/f, W/f,
    embedding_dim]``: a VAE's posterior mean, a VQ tokenizer's codes."""
    return self.encode(images)[0].astype(jnp.float32)

  def decode(self, quantized: jax.Array) -> jax.Array:
    """Latents ``[b, h, w, d]`` -> float32 images ``[b, h*f, w*f, 3]`` (unclipped)."""
    return self.decoder(quantized.astype(self.dtype))

  def decode_from_indices(self, ids: jax.Array) -> jax.Array:
    """Token ids ``[b, h, w]`` -> float32 images ``[b, h*f, w*f, 3]`` (unclipped)."""
    return self.decode(self.quantizer.lookup(ids))

  def __call__(self, images: jax.Array, train: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Reconstruction: images ``[b, H, W, 3]`` -> ``(images', aux)``.

    With ``train=True`` gradients reach the encoder through the
    straight-through estimator and aux carries the quantizer losses.
    """
    quantized, aux = self.encode(images, train=train)
    return self.decode(quantized), aux


def last_layer(params, inputs: jax.Array, dtype: Dtype = jnp.float32
               ) -> jax.Array:
  """The decoder's output convolution alone, as a function of its params.

  Args:
    params: ``{"kernel": [3, 3, c, 3], "bias": [3]}`` of the layer named by
      :func:`last_layer_name`.
    inputs: ``[b, H, W, c]``, what the decoder sows as
      ``intermediates/decoder/last_layer_input``.
    dtype: the model's activation dtype.

  Returns:
    float32 images ``[b, H, W, 3]``, as the decoder computes them.
  """
  out = jax.lax.conv_general_dilated(
      inputs.astype(dtype), params["kernel"].astype(dtype), (1, 1), "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return (out + params["bias"].astype(dtype)).astype(jnp.float32)


def last_layer_name(decoder_params) -> str:
  """The name of the decoder's output convolution (the last ``Conv_i``)."""
  convs = [k for k in decoder_params if k.startswith("Conv_")]
  return max(convs, key=lambda k: int(k.split("_")[1]))
