"""StyleGAN-style residual discriminator for tokenizer training.

Residual blocks with blurred (``[1, 3, 3, 1]``) downsampling, leaky ReLU
0.2, and skip paths scaled by ``1/sqrt(2)``, followed by a dense head, as in
StyleGAN2 and the discriminator MaskGIT's tokenizer config names.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)


def _leaky_relu(x):
  return nn.leaky_relu(x, negative_slope=0.2)


def blur_downsample(x: jax.Array) -> jax.Array:
  """Low-pass ``[1,3,3,1]`` filter then stride 2: ``[b, h, w, c]`` -> ``[b, h/2, w/2, c]``.

  The 2-D filter is the outer product of the taps, so it runs as two
  strided 1-D passes of shifted slices (padding 1 on each side centres the
  4 taps). That is the depthwise convolution of :func:`blur_downsample_conv`
  computed without grouped convolutions, which XLA:CPU runs (and
  differentiates, twice for R1) an order of magnitude slower.
  """
  taps = np.asarray(BLUR_TAPS) / np.sum(BLUR_TAPS)

  def one_axis(y, axis):
    n = y.shape[axis]
    pad = [(0, 0)] * y.ndim
    pad[axis] = (1, 1)
    y = jnp.pad(y, pad)
    return sum(float(t) * jax.lax.slice_in_dim(y, k, k + n - 1, 2, axis)
               for k, t in enumerate(taps))

  return one_axis(one_axis(x, 1), 2).astype(x.dtype)


def blur_downsample_conv(x: jax.Array) -> jax.Array:
  """:func:`blur_downsample` as one depthwise convolution (the reference)."""
  taps = np.asarray(BLUR_TAPS)
  kernel = np.outer(taps, taps)
  kernel = kernel / kernel.sum()
  channels = x.shape[-1]
  kernel = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, channels)),
                       x.dtype)
  # Pad so that the 4-tap filter is centred: 1 before, 1 after, then stride 2.
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(2, 2), padding=((1, 1), (1, 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)


def _conv(features: int, kernel: int, *, use_bias: bool = True,
          dtype: Dtype, param_dtype: Dtype, name: str | None = None):
  return nn.Conv(
      features, (kernel, kernel), padding="SAME", use_bias=use_bias,
      dtype=dtype, param_dtype=param_dtype,
      kernel_init=nn.with_logical_partitioning(
          nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"),
          ("height", "width", "conv_in", "conv_out")),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                             ("conv_out",)),
      name=name)


class DiscriminatorBlock(nn.Module):
  """conv3x3 -> lrelu -> blur-down -> conv3x3 -> lrelu, plus a blurred 1x1 skip."""

  filters: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``[b, h, w, c]`` -> ``[b, h/2, w/2, filters]``."""
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = _leaky_relu(_conv(x.shape[-1], 3, **kw)(x))
    h = _leaky_relu(_conv(self.filters, 3, **kw)(blur_downsample(h)))
    skip = _conv(self.filters, 1, use_bias=False, **kw)(blur_downsample(x))
    return (h + skip) / math.sqrt(2.0)


class StyleGANDiscriminator(nn.Module):
  """Images ``[b, H, W, 3]`` -> real/fake logits ``[b]`` (float32).

  Attributes:
    filters: base width.
    channel_multipliers: one downsampling block per entry; the input side
      must be divisible by ``2 ** len(channel_multipliers)``.
    dtype, param_dtype: activation and parameter dtypes.
  """

  filters: int = 128
  channel_multipliers: Sequence[int] = (2, 4, 4, 4, 4)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    factor = 2 ** len(self.channel_multipliers)
    if images.shape[1] % factor or images.shape[2] % factor:
      raise ValueError(
          f"discriminator input {images.shape[1]}x{images.shape[2]} is not "
          f"divisible by 2**len(channel_multipliers) = {factor}")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = _leaky_relu(_conv(self.filters, 3, **kw)(images.astype(self.dtype)))
    for multiplier in self.channel_multipliers:
      x = DiscriminatorBlock(self.filters * multiplier, **kw)(x)
    x = _leaky_relu(_conv(x.shape[-1], 3, **kw)(x))
    x = x.reshape(x.shape[0], -1)
    dense = lambda n: nn.Dense(
        n, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=nn.with_logical_partitioning(
            nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"),
            ("embed", "mlp")),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                               ("mlp",)))
    x = _leaky_relu(dense(self.filters * self.channel_multipliers[-1])(x))
    return dense(1)(x)[:, 0].astype(jnp.float32)
