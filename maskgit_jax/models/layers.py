"""Building blocks of the MaskGIT transformer (official names and numerics).

Post-LN BERT blocks (and the pre-LN block of the autoregressive prior and
MAGE, :class:`PreLNBlock`): multi-axis projections, self-attention (einsum with a
float32 softmax, or ``jax.nn.dot_product_attention``), the MLP, and the
layer that chains them; LayerNorm eps 1e-12 and tanh-approximate gelu as in
google-research/maskgit. Every parameter carries logical axis names. Shared
by :mod:`maskgit_jax.models.transformer` and any model built from the same
blocks.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

LAYERNORM_EPSILON = 1e-12
ATTENTION_IMPLS = ("einsum", "xla", "cudnn")

Dtype = Any
Initializer = Callable[..., jax.Array]

_zeros = nn.initializers.zeros
_ones = nn.initializers.ones
PRE_LN_INIT = nn.initializers.normal(stddev=0.02)  # minGPT's and MAE's


def layer_norm(name: str, dtype: Dtype, param_dtype: Dtype) -> nn.LayerNorm:
  return nn.LayerNorm(
      epsilon=LAYERNORM_EPSILON, dtype=dtype, param_dtype=param_dtype,
      scale_init=nn.with_logical_partitioning(_ones, ("embed",)),
      bias_init=nn.with_logical_partitioning(_zeros, ("embed",)),
      name=name)


def dense(features: int, names: tuple[str, str], kernel_init: Initializer,
           dtype: Dtype, param_dtype: Dtype, name: str,
           matmul_dtype: Dtype | None = None) -> nn.Dense:
  """A Dense layer whose kernel is ``names`` and bias ``names[1:]``."""
  return nn.Dense(
      features, dtype=dtype, param_dtype=param_dtype,
      dot_general=matmul_dot_general(matmul_dtype),
      kernel_init=nn.with_logical_partitioning(kernel_init, names),
      bias_init=nn.with_logical_partitioning(_zeros, names[1:]), name=name)


def learned_embedding(num: int, features: int, axis: str) -> nn.Embed:
  """A table ``[num, features]`` initialised as :data:`PRE_LN_INIT`, with
  logical names ``(axis, "embed")`` (tokens: "vocab"; positions: "pos")."""
  return nn.Embed(num, features, embedding_init=nn.with_logical_partitioning(
      PRE_LN_INIT, (axis, "embed")))


def gelu(x):
  # The official code calls jax.nn.gelu with its default (tanh) approximation.
  return jax.nn.gelu(x, approximate=True)


def matmul_dot_general(matmul_dtype: Dtype | None) -> Callable | None:
  """A ``dot_general`` whose operands are cast to ``matmul_dtype``, summed in
  float32 and returned in the first operand's dtype; None (plain
  ``lax.dot_general``) when ``matmul_dtype`` is None.

  The "bfloat16 matmul operands only" precision: the activations, the
  residual stream and everything outside the products stay in their dtype.
  """
  if matmul_dtype is None:
    return None

  def dot_general(x, y, dimension_numbers, precision=None,
                  preferred_element_type=None):
    del preferred_element_type  # always float32 sums
    out = jax.lax.dot_general(
        x.astype(matmul_dtype), y.astype(matmul_dtype), dimension_numbers,
        precision=precision, preferred_element_type=jnp.float32)
    return out.astype(x.dtype)

  return dot_general


def einsum(spec: str, x, y, matmul_dtype: Dtype | None = None,
           out_dtype: Dtype | None = None) -> jax.Array:
  """``jnp.einsum(spec, x, y)`` in ``out_dtype`` (default: their promoted
  dtype); with ``matmul_dtype`` the operands are cast to it and summed in
  float32 (see :func:`matmul_dot_general`)."""
  if matmul_dtype is None:
    return jnp.einsum(spec, x, y, preferred_element_type=out_dtype)
  out = jnp.einsum(spec, x.astype(matmul_dtype), y.astype(matmul_dtype),
                   preferred_element_type=jnp.float32)
  return out.astype(out_dtype or jnp.promote_types(x.dtype, y.dtype))


class Projection(nn.Module):
  """Dense layer over several input and output axes (q/k/v and out).

  Like ``nn.DenseGeneral`` with the official parameter shapes, but the
  kernel is initialised at its true shape so that its logical axis names
  apply to it directly (DenseGeneral initialises a flattened 2-D kernel,
  which breaks sharding constraints on 3-D logical names under a mesh).

  Attributes:
    features: output dimensions, e.g. ``(heads, head_dim)`` or ``(hidden,)``.
    in_axes: how many trailing input axes are contracted (1 or 2).
    kernel_names, bias_names: logical axis names of the parameters.
    matmul_dtype: the product's operand dtype (None: ``dtype``).
  """

  features: tuple[int, ...]
  in_axes: int
  kernel_init: Initializer
  kernel_names: tuple[str, ...]
  bias_names: tuple[str, ...]
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``[..., *in_dims]`` -> ``[..., *features]``."""
    in_shape = x.shape[x.ndim - self.in_axes:]
    kernel = self.param(
        "kernel", nn.with_logical_partitioning(self.kernel_init,
                                               self.kernel_names),
        tuple(in_shape) + tuple(self.features), self.param_dtype)
    bias = self.param(
        "bias", nn.with_logical_partitioning(_zeros, self.bias_names),
        tuple(self.features), self.param_dtype)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias,
                                              dtype=self.dtype)
    contract_x = tuple(range(x.ndim - self.in_axes, x.ndim))
    dot = matmul_dot_general(self.matmul_dtype) or jax.lax.dot_general
    y = dot(x, kernel, ((contract_x, tuple(range(self.in_axes))), ((), ())))
    return y + bias


class SelfAttention(nn.Module):
  """Multi-head self-attention without masking (every token sees every token).

  Attributes:
    num_heads: number of heads; ``hidden_size`` must divide evenly.
    dropout_rate: dropout on the attention weights.
    kernel_init: initializer of the q/k/v/out kernels.
    impl: "einsum" (plain einsum + f32 softmax), "xla" or "cudnn"
      (``jax.nn.dot_product_attention`` with that implementation).
  """

  num_heads: int
  dropout_rate: float
  kernel_init: Initializer
  impl: str = "einsum"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    """``[batch, length, hidden]`` -> ``[batch, length, hidden]``."""
    hidden = x.shape[-1]
    if hidden % self.num_heads:
      raise ValueError(
          f"hidden size {hidden} is not divisible by num_heads {self.num_heads}")
    head_dim = hidden // self.num_heads
    proj = functools.partial(
        Projection, features=(self.num_heads, head_dim), in_axes=1,
        kernel_init=self.kernel_init, kernel_names=("embed", "heads", "kv"),
        bias_names=("heads", "kv"), dtype=self.dtype,
        param_dtype=self.param_dtype, matmul_dtype=self.matmul_dtype)
    q = proj(name="query")(x)
    k = proj(name="key")(x)
    v = proj(name="value")(x)
    qkv_axes = ("batch", "length", "heads", "kv")
    q, k, v = (nn.with_logical_constraint(t, qkv_axes) for t in (q, k, v))

    use_dropout = not deterministic and self.dropout_rate > 0.0
    if self.impl == "einsum" or use_dropout:
      q = q / jnp.sqrt(head_dim).astype(q.dtype)
      logits = einsum("bqhd,bkhd->bhqk", q, k, self.matmul_dtype)
      weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
      weights = weights.astype(self.dtype)
      if use_dropout:
        weights = nn.Dropout(rate=self.dropout_rate)(
            weights, deterministic=False)
      out = einsum("bhqk,bkhd->bqhd", weights, v, self.matmul_dtype)
    elif self.impl in ("xla", "cudnn"):
      md = self.matmul_dtype or q.dtype
      out = jax.nn.dot_product_attention(
          q.astype(md), k.astype(md), v.astype(md),
          implementation=self.impl).astype(q.dtype)
    else:
      raise ValueError(
          f"attention impl must be one of {ATTENTION_IMPLS}, got {self.impl!r}")
    out = nn.with_logical_constraint(out, qkv_axes)
    return Projection(
        features=(hidden,), in_axes=2, kernel_init=self.kernel_init,
        kernel_names=("heads", "kv", "embed"), bias_names=("embed",),
        dtype=self.dtype, param_dtype=self.param_dtype,
        matmul_dtype=self.matmul_dtype, name="out")(out)


class Attention(nn.Module):
  """Self-attention, dropout, residual and post-LayerNorm."""

  num_heads: int
  hidden_dropout_rate: float
  attention_dropout_rate: float
  kernel_init: Initializer
  attention_impl: str = "einsum"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    h = SelfAttention(
        num_heads=self.num_heads, dropout_rate=self.attention_dropout_rate,
        kernel_init=self.kernel_init, impl=self.attention_impl,
        dtype=self.dtype, param_dtype=self.param_dtype,
        matmul_dtype=self.matmul_dtype, name="self_attention")(x, deterministic)
    h = nn.Dropout(rate=self.hidden_dropout_rate)(h, deterministic=deterministic)
    return layer_norm("attention_output_ln", self.dtype, self.param_dtype)(
        h + x)


class Mlp(nn.Module):
  """Dense -> gelu -> Dense, dropout, residual and post-LayerNorm."""

  mlp_dim: int
  hidden_dropout_rate: float
  kernel_init: Initializer
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    hidden = x.shape[-1]
    kw = dict(kernel_init=self.kernel_init, dtype=self.dtype,
              param_dtype=self.param_dtype, matmul_dtype=self.matmul_dtype)
    h = dense(self.mlp_dim, ("embed", "mlp"), name="intermediate_output",
               **kw)(x)
    h = nn.with_logical_constraint(gelu(h), ("batch", "length", "mlp"))
    h = dense(hidden, ("mlp", "embed"), name="layer_output", **kw)(h)
    h = nn.Dropout(rate=self.hidden_dropout_rate)(h, deterministic=deterministic)
    return layer_norm("layer_output_ln", self.dtype, self.param_dtype)(h + x)


class TransformerLayer(nn.Module):
  """One post-LN BERT block: Attention_0 then Mlp_0."""

  num_heads: int
  mlp_dim: int
  hidden_dropout_rate: float
  attention_dropout_rate: float
  kernel_init: Initializer
  attention_impl: str = "einsum"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    """``[batch, length, hidden]`` -> ``[batch, length, hidden]``."""
    x = Attention(
        num_heads=self.num_heads, hidden_dropout_rate=self.hidden_dropout_rate,
        attention_dropout_rate=self.attention_dropout_rate,
        kernel_init=self.kernel_init, attention_impl=self.attention_impl,
        dtype=self.dtype, param_dtype=self.param_dtype,
        matmul_dtype=self.matmul_dtype)(x, deterministic)
    x = Mlp(
        mlp_dim=self.mlp_dim, hidden_dropout_rate=self.hidden_dropout_rate,
        kernel_init=self.kernel_init, dtype=self.dtype,
        param_dtype=self.param_dtype,
        matmul_dtype=self.matmul_dtype)(x, deterministic)
    return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class PreLNBlock(nn.Module):
  """Pre-LN (GPT/ViT) block: ``x + Attn(LN(x))`` then ``x + Mlp(LN(x))``.

  Used by the autoregressive prior (``causal=True``, with a key/value
  cache) and MAGE's encoder and decoder (``causal=False``). Softmax and
  LayerNorm in float32.
  """

  num_heads: int
  mlp_dim: int
  dropout_rate: float
  attention_dropout_rate: float
  causal: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, positions: jax.Array, keys_values,
               deterministic: bool):
    """``x [b, s, d]`` at ``positions [s]``; ``keys_values``: None (attend
    within ``x``) or ``(cache [2, b, n, heads, head_dim], pos)`` (causal).

    Returns ``(x, written cache or None)``.
    """
    hidden = x.shape[-1]
    if hidden % self.num_heads:
      raise ValueError(
          f"hidden size {hidden} is not divisible by num_heads {self.num_heads}")
    head_dim = hidden // self.num_heads
    proj = functools.partial(
        Projection, features=(self.num_heads, head_dim), in_axes=1,
        kernel_init=PRE_LN_INIT, kernel_names=("embed", "heads", "kv"),
        bias_names=("heads", "kv"))
    h = layer_norm("attention_ln", jnp.float32, jnp.float32)(x)
    q, k, v = (proj(name=n)(h) for n in ("query", "key", "value"))
    written = None
    key_positions = positions
    if keys_values is not None:
      cache, pos = keys_values
      k = jax.lax.dynamic_update_slice(cache[0], k, (0, pos, 0, 0))
      v = jax.lax.dynamic_update_slice(cache[1], v, (0, pos, 0, 0))
      written = jnp.stack([k, v])
      key_positions = jnp.arange(k.shape[1])
    scores = jnp.einsum("bqhd,bkhd->bhqk", q / jnp.sqrt(head_dim), k)
    if self.causal:
      visible = key_positions[None, :] <= positions[:, None]
      scores = jnp.where(visible, scores, jnp.finfo(jnp.float32).min)
    weights = nn.Dropout(self.attention_dropout_rate)(
        jax.nn.softmax(scores, axis=-1), deterministic=deterministic)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    out = Projection(
        features=(hidden,), in_axes=2, kernel_init=PRE_LN_INIT,
        kernel_names=("heads", "kv", "embed"), bias_names=("embed",),
        name="out")(out)
    x = x + nn.Dropout(self.dropout_rate)(out, deterministic=deterministic)
    h = layer_norm("mlp_ln", jnp.float32, jnp.float32)(x)
    h = dense(self.mlp_dim, ("embed", "mlp"), PRE_LN_INIT, jnp.float32,
              jnp.float32, name="mlp_in")(h)
    h = dense(hidden, ("mlp", "embed"), PRE_LN_INIT, jnp.float32,
              jnp.float32, name="mlp_out")(gelu(h))
    x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    return nn.with_logical_constraint(x, ("batch", "length", "embed")), written
