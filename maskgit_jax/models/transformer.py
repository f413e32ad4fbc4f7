"""The bidirectional MaskGIT transformer (BERT-style, post-LN).

Module and parameter names mirror google-research/maskgit so that the
released checkpoints' ``params`` apply unchanged::

    Embed_0/{word_embeddings,position_embeddings}/embedding, Embed_0/embeddings_ln
    TransformerLayer_i/Attention_0/self_attention/{query,key,value,out}
    TransformerLayer_i/Attention_0/attention_output_ln
    TransformerLayer_i/Mlp_0/{intermediate_output,layer_output,layer_output_ln}
    MlmLayer_0/{mlm_dense,mlm_ln,mlm_bias}

Numerics follow the official code: LayerNorm eps 1e-12, tanh-approximate
gelu, learned position embeddings, embedding LayerNorm, MLM head
``LN(gelu(Dense(h)))`` whose output is tied to the word embedding plus a bias,
truncated-normal init. Every parameter carries logical axis names
(``vocab, embed, heads, kv, mlp, pos``) for sharding; activations are
constrained to ``(batch, length, embed)`` and friends.

Precision: ``dtype`` is the activation/compute dtype (bf16 on accelerators),
``param_dtype`` the storage dtype (f32). Attention softmax, LayerNorm
statistics and the output logits are float32.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.decoding import tokens as tokens_lib
from maskgit_jax.models import layers
# The blocks, importable from here as before.
from maskgit_jax.models.layers import (  # pylint: disable=unused-import
    ATTENTION_IMPLS, LAYERNORM_EPSILON, Attention, Dtype, Initializer, Mlp,
    Projection, SelfAttention, TransformerLayer)

_zeros = nn.initializers.zeros
NORMS = ("post", "pre")  # where the blocks' LayerNorms sit (Transformer.norm)


class Embed(nn.Module):
  """Word + learned position embeddings, LayerNorm, dropout."""

  vocab_size: int
  hidden_size: int
  max_position_embeddings: int
  dropout_rate: float
  embedding_init: Initializer
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    self.word_embeddings = nn.Embed(
        self.vocab_size, self.hidden_size, dtype=self.dtype,
        param_dtype=self.param_dtype,
        embedding_init=nn.with_logical_partitioning(
            self.embedding_init, ("vocab", "embed")))
    self.position_embeddings = nn.Embed(
        self.max_position_embeddings, self.hidden_size, dtype=self.dtype,
        param_dtype=self.param_dtype,
        embedding_init=nn.with_logical_partitioning(
            self.embedding_init, ("pos", "embed")))
    self.embeddings_ln = layers.layer_norm(
        "embeddings_ln", self.dtype, self.param_dtype)
    self.dropout = nn.Dropout(rate=self.dropout_rate)

  def __call__(self, ids: jax.Array, deterministic: bool) -> jax.Array:
    """int ``[batch, length]`` (no negative ids) -> ``[batch, length, hidden]``."""
    length = ids.shape[-1]
    if length > self.max_position_embeddings:
      raise ValueError(
          f"sequence length {length} exceeds max_position_embeddings "
          f"{self.max_position_embeddings}")
    x = self.word_embeddings(ids) + self.position_embeddings(
        jnp.arange(length)[None, :])
    x = self.embeddings_ln(x)
    return self.dropout(x, deterministic=deterministic)

  def table(self) -> jax.Array:
    """The word embedding matrix ``[vocab, hidden]`` (tied to the MLM output)."""
    return self.word_embeddings.embedding


class MlmLayer(nn.Module):
  """``LN(gelu(Dense(h))) @ word_embeddings.T + bias`` -> float32 logits."""

  vocab_size: int
  kernel_init: Initializer
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, table: jax.Array,
               num_logits: int | None = None) -> jax.Array:
    """``x [batch, length, hidden]``, ``table [vocab, hidden]`` -> ``[batch, length, n]``.

    ``n`` is ``num_logits`` (the logits of ids ``[0, n)`` only, computed
    from the first ``n`` rows of the table) or the whole vocabulary.
    """
    hidden = x.shape[-1]
    n = self.vocab_size if num_logits is None else num_logits
    h = layers.dense(hidden, ("embed", "mlp"), self.kernel_init, self.dtype,
                     self.param_dtype, name="mlm_dense",
                     matmul_dtype=self.matmul_dtype)(x)
    h = layers.layer_norm("mlm_ln", self.dtype, self.param_dtype)(layers.gelu(h))
    logits = layers.einsum("bld,vd->blv", h, table[:n].astype(self.dtype),
                           self.matmul_dtype, out_dtype=jnp.float32)
    bias = _Bias(self.vocab_size, self.param_dtype, name="mlm_bias")()
    logits = logits + bias[:n].astype(jnp.float32)
    return nn.with_logical_constraint(logits, ("batch", "length", "vocab"))


class _Bias(nn.Module):
  """A lone bias vector (the official ``mlm_bias/bias``)."""

  size: int
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self) -> jax.Array:
    return self.param(
        "bias", nn.with_logical_partitioning(_zeros, ("vocab",)),
        (self.size,), self.param_dtype)


class Transformer(nn.Module):
  """The MaskGIT bidirectional transformer.

  Attributes:
    codebook_size: number of image codes (1024 for the released models).
    num_classes: number of class tokens (1000 for ImageNet).
    hidden_size: model width (768).
    num_layers: number of blocks (24).
    num_heads: attention heads (16).
    mlp_dim: MLP hidden width (3072).
    max_position_embeddings: positions in the table, >= 1 + h * w.
    dropout_rate: dropout on embeddings and block outputs (0.1).
    attention_dropout_rate: dropout on attention weights (0.1).
    initializer_range: std of the truncated-normal init (0.02).
    attention_impl: "einsum", "xla" or "cudnn"; see :class:`SelfAttention`.
    remat: rematerialise each block in the backward pass (saves activation
      memory at full size; the parameter tree is unchanged).
    dtype: activation dtype; param_dtype: parameter dtype.
    matmul_dtype: when set, the operands of every product (projections,
      attention, MLP, output head) are cast to it and summed in float32;
      everything else stays in ``dtype`` (see ``PRECISIONS``).
    norm: "post" (the official BERT blocks, ``LN(x + f(x))``; the released
      checkpoints and the parity fixtures) or "pre" (``x + f(LN(x))`` with a
      final LayerNorm before the head: the autoregressive prior's and
      MAGE's blocks, :class:`~maskgit_jax.models.layers.PreLNBlock`, run
      bidirectionally; float32, einsum attention, no ``matmul_dtype``).
  """

  codebook_size: int
  num_classes: int
  hidden_size: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  max_position_embeddings: int
  dropout_rate: float = 0.1
  attention_dropout_rate: float = 0.1
  initializer_range: float = 0.02
  attention_impl: str = "einsum"
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  matmul_dtype: Dtype | None = None
  norm: str = "post"

  @property
  def layout(self) -> tokens_lib.TokenLayout:
    return tokens_lib.TokenLayout(self.codebook_size, self.num_classes)

  def _check_norm(self) -> None:
    if self.norm not in NORMS:
      raise ValueError(f"norm {self.norm!r}; expected one of {NORMS}")
    if self.norm == "pre" and (
        self.attention_impl != "einsum" or self.matmul_dtype is not None or
        jnp.dtype(self.dtype) != jnp.float32):
      raise ValueError(
          "norm='pre' runs in float32 with einsum attention; got "
          f"attention_impl={self.attention_impl!r}, dtype={self.dtype}, "
          f"matmul_dtype={self.matmul_dtype}")

  def _post_ln_blocks(self, x: jax.Array, deterministic: bool,
                      init) -> jax.Array:
    """The official blocks (``TransformerLayer_i``)."""
    block = TransformerLayer
    if self.remat:
      # Argument 2 (counting self) is `deterministic`, a Python bool.
      block = nn.remat(TransformerLayer, static_argnums=(2,))
    for i in range(self.num_layers):
      x = block(
          num_heads=self.num_heads, mlp_dim=self.mlp_dim,
          hidden_dropout_rate=self.dropout_rate,
          attention_dropout_rate=self.attention_dropout_rate,
          kernel_init=init, attention_impl=self.attention_impl,
          dtype=self.dtype, param_dtype=self.param_dtype,
          matmul_dtype=self.matmul_dtype,
          name=f"TransformerLayer_{i}")(x, deterministic)
    return x

  def _pre_ln_blocks(self, x: jax.Array, deterministic: bool) -> jax.Array:
    """The prior's blocks run bidirectionally (``block_i``, ``final_ln``)."""
    block = layers.PreLNBlock
    if self.remat:  # counting self, argument 4 is `deterministic`
      block = nn.remat(layers.PreLNBlock, static_argnums=(4,))
    positions = jnp.arange(x.shape[1])
    for i in range(self.num_layers):
      x, _ = block(self.num_heads, self.mlp_dim, self.dropout_rate,
                   self.attention_dropout_rate, causal=False,
                   name=f"block_{i}")(x, positions, None, deterministic)
    return layers.layer_norm("final_ln", jnp.float32, jnp.float32)(x)

  @nn.compact
  def __call__(self, ids: jax.Array, deterministic: bool = True,
               num_logits: int | None = None,
               hidden_only: bool = False) -> jax.Array:
    """Token ids -> logits (or the last block's hidden states).

    Args:
      ids: int ``[batch, length]``: ``[class token, image tokens]``; masked
        positions hold ``layout.mask_id`` or the official -1.
      deterministic: disables dropout when True; otherwise needs a
        ``'dropout'`` rng.
      num_logits: compute the logits of ids ``[0, num_logits)`` only
        (``codebook_size``: the image codes, all that decoding samples;
        skips the output projection onto class and mask ids).
      hidden_only: return the last block's output ``[batch, length,
        hidden]`` (with ``norm="pre"``, after the final LayerNorm) without
        the MLM head (which is then not built: a token critic's body has no
        head parameters).

    Returns:
      float32 ``[batch, length, num_logits or vocab_size]`` logits.
    """
    self._check_norm()
    layout = self.layout
    ids = layout.canonicalize(ids)
    init = nn.initializers.truncated_normal(self.initializer_range)
    embed = Embed(
        vocab_size=layout.vocab_size, hidden_size=self.hidden_size,
        max_position_embeddings=self.max_position_embeddings,
        dropout_rate=self.dropout_rate, embedding_init=init,
        dtype=self.dtype, param_dtype=self.param_dtype, name="Embed_0")
    x = embed(ids, deterministic)
    x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
    if self.norm == "pre":
      x = self._pre_ln_blocks(x, deterministic)
    else:
      x = self._post_ln_blocks(x, deterministic, init)
    if hidden_only:
      return x
    return MlmLayer(
        vocab_size=layout.vocab_size, kernel_init=init, dtype=self.dtype,
        param_dtype=self.param_dtype, matmul_dtype=self.matmul_dtype,
        name="MlmLayer_0")(x, embed.table(), num_logits)


@dataclasses.dataclass(frozen=True)
class CodebookLogits:
  """``tokens_to_logits`` for :func:`maskgit_jax.decoding.parallel_decode.decode`.

  Applies ``model`` and keeps the logits of the image codes only, so class
  and mask ids can never be sampled. Frozen and compared by value: a new
  instance around an equal model reuses the compiled decode.
  """

  model: Transformer

  def __call__(self, params, ids: jax.Array) -> jax.Array:
    """``params`` (the ``'params'`` collection), ids ``[batch, length]`` -> ``[batch, length, codebook]``."""
    return self.model.apply({"params": params}, ids, deterministic=True,
                            num_logits=self.model.codebook_size)


# Inference precisions of :func:`with_precision`.
PRECISIONS = ("float32", "bfloat16", "bfloat16_matmul")


def with_precision(model: Transformer, params, precision: str
                   ) -> tuple[Transformer, Any]:
  """``(model, params)`` to run in ``precision`` (one of ``PRECISIONS``).

  * ``"float32"``: unchanged (the official numerics, bit-exact);
  * ``"bfloat16"``: parameters stored and activations computed in bfloat16;
  * ``"bfloat16_matmul"``: float32 parameters and activations, only the
    operands of the products cast to bfloat16 (float32 sums).

  In every precision the attention softmax, the LayerNorm statistics and
  the output logits are float32, so sampling arithmetic is unchanged.

  Raises:
    ValueError: an unknown precision.
  """
  if precision not in PRECISIONS:
    raise ValueError(
        f"precision must be one of {PRECISIONS}, got {precision!r}")
  if precision == "bfloat16":
    cast = lambda x: (x.astype(jnp.bfloat16)
                      if jnp.issubdtype(x.dtype, jnp.floating) else x)
    return (model.clone(dtype=jnp.bfloat16, param_dtype=jnp.bfloat16),
            jax.tree.map(cast, params))
  if precision == "bfloat16_matmul":
    return model.clone(matmul_dtype=jnp.bfloat16), params
  return model, params
