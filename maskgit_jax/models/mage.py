"""MAGE: one masked token model for generation and representation learning.

Li et al., CVPR 2023, as LTH14/mage implements it (``models_mage.py``):

* input: the fake class token [C] then the ``L`` image tokens (masked ones
  as the mask token), word + learned position embeddings, LayerNorm,
  dropout (``BertEmbeddings``);
* **encoder**: pre-LN ViT blocks over [C] and the *kept* positions only
  (``kept`` from :func:`maskgit_jax.objectives.mage_corruption.drop_and_mask`: a static
  length), then a LayerNorm;
* **decoder**: ``decoder_embed`` (Dense), a full-length sequence where every
  masked position (kept or dropped) holds the encoder's **[C] output** and
  the kept visible positions their own outputs ("[C] padding"), learned
  decoder positions, pre-LN blocks, a LayerNorm;
* **head**: ``LN(gelu(Dense(x)))`` against the input word embeddings
  (gradient stopped there, as the reference detaches them) plus a bias,
  over the codebook ids only;
* **MAGE-C's projector** (``projection_dim > 0``): ``Dense(gelu(Dense(p)))``
  of the encoder's output averaged over its image positions ``p`` (not
  [C]), for :func:`maskgit_jax.objectives.contrastive.info_nce`. The paper
  names a two-layer MLP on the pooled encoder output; its sizes were never
  published (the hidden layer here has the encoder's width).

Sequences use :class:`~maskgit_jax.decoding.tokens.TokenLayout` with one class: [C]
is ``codebook_size`` and the mask ``codebook_size + 1`` (the released
weights' 2,025-row vocabulary with [C] = 1100 is a loading concern, not
the model's). Every parameter carries logical axis names.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.decoding import tokens as tokens_lib
from maskgit_jax.models import layers

_init = layers.PRE_LN_INIT


def _run(blocks, x: jax.Array, deterministic: bool) -> jax.Array:
  positions = jnp.arange(x.shape[1])
  for block in blocks:
    x, _ = block(x, positions, None, deterministic)
  return x


class MAGE(nn.Module):
  """``ids [b, 1 + L] -> logits [b, L, codebook]`` (float32).

  Attributes:
    codebook_size: image codes; num_tokens: ``L``.
    hidden_size, encoder_layers, encoder_heads: the encoder (ViT-B: 768,
      12, 12); decoder_size, decoder_layers, decoder_heads: the decoder
      (the reference: the encoder's width, 8 blocks, 16 heads).
    mlp_ratio: MLP width over the block width (4).
    dropout_rate: attention and MLP dropout (0.1).
    projection_dim: MAGE-C's projector output (0: no projector, MAGE).
  """

  codebook_size: int
  num_tokens: int
  hidden_size: int = 768
  encoder_layers: int = 12
  encoder_heads: int = 12
  decoder_size: int = 768
  decoder_layers: int = 8
  decoder_heads: int = 16
  mlp_ratio: int = 4
  dropout_rate: float = 0.1
  projection_dim: int = 0

  @property
  def layout(self) -> tokens_lib.TokenLayout:
    return tokens_lib.TokenLayout(self.codebook_size, 1)

  @property
  def class_id(self) -> int:
    """The fake class token [C]."""
    return self.codebook_size

  @property
  def num_classes(self) -> int:
    """One class token, [C] (label 0): MAGE is unconditional."""
    return 1

  @property
  def max_position_embeddings(self) -> int:
    """[C] and the ``L`` image positions (as the MaskGIT transformer's)."""
    return 1 + self.num_tokens

  def setup(self):
    self.word_embeddings = layers.learned_embedding(
        self.layout.vocab_size, self.hidden_size, "vocab")
    self.position_embeddings = layers.learned_embedding(
        1 + self.num_tokens, self.hidden_size, "pos")
    self.decoder_positions = layers.learned_embedding(
        1 + self.num_tokens, self.decoder_size, "pos")
    ln = lambda name: layers.layer_norm(name, jnp.float32, jnp.float32)  # pylint: disable=unnecessary-lambda-assignment
    self.embeddings_ln, self.encoder_ln, self.decoder_ln = (
        ln("embeddings_ln"), ln("encoder_ln"), ln("decoder_ln"))
    self.decoder_embed = layers.dense(self.decoder_size, ("embed", "mlp"),
                                      _init, jnp.float32, jnp.float32,
                                      name="decoder_embed")
    self.dropout = nn.Dropout(self.dropout_rate)
    self.encoder_blocks = [
        layers.PreLNBlock(self.encoder_heads, self.mlp_ratio * self.hidden_size,
                          self.dropout_rate, self.dropout_rate, causal=False,
                          name=f"encoder_{i}")
        for i in range(self.encoder_layers)]
    self.decoder_blocks = [
        layers.PreLNBlock(self.decoder_heads,
                          self.mlp_ratio * self.decoder_size,
                          self.dropout_rate, self.dropout_rate, causal=False,
                          name=f"decoder_{i}")
        for i in range(self.decoder_layers)]
    self.mlm_dense = layers.dense(self.hidden_size, ("mlp", "embed"), _init,
                                  jnp.float32, jnp.float32, name="mlm_dense")
    self.mlm_ln = ln("mlm_ln")
    self.mlm_bias = self.param(
        "mlm_bias", nn.with_logical_partitioning(nn.initializers.zeros,
                                                 ("vocab",)),
        (self.layout.vocab_size,))
    if self.projection_dim:
      self.projector_hidden = layers.dense(
          self.hidden_size, ("embed", "mlp"), _init, jnp.float32, jnp.float32,
          name="projector_hidden")
      self.projector_out = layers.dense(
          self.projection_dim, ("mlp", "projection"), _init, jnp.float32,
          jnp.float32, name="projector_out")

  def encode(self, ids: jax.Array, kept: jax.Array | None = None,
             deterministic: bool = True) -> jax.Array:
    """Encoder outputs ``[b, 1 + K, hidden]``: [C], then the ``kept [b, K]``
    image positions (all ``L`` when None), after the final LayerNorm."""
    x = self.word_embeddings(ids) + self.position_embeddings(
        jnp.arange(ids.shape[1]))[None]
    x = self.dropout(self.embeddings_ln(x), deterministic=deterministic)
    if kept is not None:
      image = jnp.take_along_axis(x[:, 1:], kept[..., None], axis=1)
      x = jnp.concatenate([x[:, :1], image], axis=1)
    return self.encoder_ln(_run(self.encoder_blocks, x, deterministic))

  def __call__(self, ids: jax.Array, kept: jax.Array | None = None,
               deterministic: bool = True, project: bool = False):
    """Logits of every image position (masked ones are what is trained);
    ``project=True`` (a model with a projector): ``(logits, projection
    [b, projection_dim])`` from one encoder pass."""
    if project and not self.projection_dim:
      raise ValueError("this MAGE has no projector (projection_dim 0)")
    encoded = self.encode(ids, kept, deterministic)
    logits = self._decode(encoded, ids, kept, deterministic)
    if not (project or (self.projection_dim and self.is_initializing())):
      return logits  # (init makes the projector's parameters either way)
    hidden = layers.gelu(self.projector_hidden(encoded[:, 1:].mean(axis=1)))
    projection = self.projector_out(hidden).astype(jnp.float32)
    return (logits, projection) if project else logits

  def _decode(self, encoded: jax.Array, ids: jax.Array,
              kept: jax.Array | None, deterministic: bool) -> jax.Array:
    """The decoder and head on ``encode``'s output: ``[b, L, codebook]``."""
    h = self.decoder_embed(encoded)
    x = pad_with_class(h, kept, ids[:, 1:] == self.layout.mask_id)
    x = x + self.decoder_positions(jnp.arange(1 + self.num_tokens))[None]
    x = _run(self.decoder_blocks, x, deterministic)
    x = self.mlm_ln(layers.gelu(self.mlm_dense(self.decoder_ln(x))))
    table = jax.lax.stop_gradient(
        self.word_embeddings.embedding[:self.codebook_size])
    logits = jnp.einsum("bld,vd->blv", x[:, 1:], table)
    logits = logits + self.mlm_bias[:self.codebook_size]
    return nn.with_logical_constraint(logits.astype(jnp.float32),
                                      ("batch", "length", "vocab"))

  def positions(self, ids: jax.Array) -> jax.Array:
    """The encoder's last block over the whole (unmasked) sequence, at the
    image positions: ``[b, L, hidden]`` (no final LayerNorm; see
    :meth:`features`)."""
    x = self.word_embeddings(ids) + self.position_embeddings(
        jnp.arange(ids.shape[1]))[None]
    return _run(self.encoder_blocks, self.embeddings_ln(x), True)[:, 1:]

  def features(self, ids: jax.Array) -> jax.Array:
    """Linear-probe features ``[b, hidden]``: the encoder's last block over
    the whole (unmasked) sequence, mean over the image tokens (not [C]).

    The reference deletes the encoder's final LayerNorm and applies a frozen
    fresh one (no learned scale): the mean is normalised without one here.
    """
    pooled = self.positions(ids).mean(axis=1)
    mean = pooled.mean(-1, keepdims=True)
    var = pooled.var(-1, keepdims=True)
    return (pooled - mean) * jax.lax.rsqrt(var + 1e-6)


def pad_with_class(h: jax.Array, kept: jax.Array | None, masked: jax.Array
                   ) -> jax.Array:
  """The decoder's input ``[b, 1 + L, d]`` ("[C] padding").

  Args:
    h: encoder outputs after ``decoder_embed``, ``[b, 1 + K, d]``: [C], then
      the ``kept`` positions (all ``L`` when ``kept`` is None).
    kept: int ``[b, K]`` image positions the encoder saw, or None.
    masked: bool ``[b, L]``, True at masked positions.

  Returns:
    [C]'s output, then per image position: [C]'s output where masked or
    dropped, the position's own output where kept and visible.
  """
  cls = h[:, :1]
  batch, length = masked.shape
  if kept is None:
    full = h[:, 1:]
  else:
    full = jnp.broadcast_to(cls, (batch, length, h.shape[-1]))
    full = full.at[jnp.arange(batch)[:, None], kept].set(h[:, 1:])
  full = jnp.where(masked[..., None], cls, full)
  return jnp.concatenate([cls, full], axis=1)


@dataclasses.dataclass(frozen=True)
class MAGELogits:
  """``tokens_to_logits`` for :func:`maskgit_jax.decoding.parallel_decode.decode`.

  The reference's generation: the whole sequence through the encoder (no
  dropping; masked tokens enter as the mask token), [C] padding of every
  masked position in the decoder, logits over the codebook. The decode
  wants a row per sequence position, so the [C] position gets zeros (it is
  known, never sampled). Frozen: equal instances reuse the compiled decode.
  """

  model: MAGE

  def __call__(self, params, ids: jax.Array) -> jax.Array:
    """``ids [b, 1 + L]`` -> float32 ``[b, 1 + L, codebook]``."""
    logits = self.model.apply({"params": params}, ids)
    return jnp.concatenate([jnp.zeros_like(logits[:, :1]), logits], axis=1)


def sequences(tokens: jax.Array, mask: jax.Array, layout) -> jax.Array:
  """int32 ``[b, 1 + L]``: [C] then ``tokens [b, L]`` masked where ``mask``."""
  return layout.make_sequence(jnp.zeros((tokens.shape[0],), jnp.int32),
                              tokens, mask=mask)
