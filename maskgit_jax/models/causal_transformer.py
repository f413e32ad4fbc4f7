"""The autoregressive prior: a class-conditional causal (GPT-style) transformer.

VQGAN's stage 2 (Esser et al. 2021, Taming Transformers' minGPT), the model
MaskGIT replaced: image tokens in raster order, each predicted from the
class token and the tokens before it. Pre-LayerNorm blocks (unlike MaskGIT's
post-LN ones), learned position embeddings, an untied output head over the
image codes only.

Sequences use MaskGIT's :class:`~maskgit_jax.decoding.tokens.TokenLayout`
(``[class_token, t_0, ..., t_{L-1}]``, class ``c`` at ``codebook_size + c``;
the mask id only marks unknown positions for the decode and is never fed).
The model reads the first ``L`` entries, ``[class, t_0, ..., t_{L-2}]``, and
the logits at position ``p`` predict ``t_p``: one pass scores every token of
an image (teacher forcing).

Two entry points over one set of parameters:

* ``model.apply({"params": p}, ids)``: logits ``[b, s, codebook]`` of a
  causal pass over ``ids [b, s]`` (training, and decoding by recomputing).
* ``model.apply({"params": p}, ids, cache, pos, method=model.extend)``: the
  same positions ``pos .. pos + s - 1`` computed against a key/value cache
  (``init_cache``) that holds every earlier position; returns the logits and
  the cache with these positions written. Sampling feeds one token a step.

Every parameter carries logical axis names (``vocab, embed, heads, kv, mlp,
pos``) as the MaskGIT transformer's do, so the same sharding rules apply.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.decoding import tokens as tokens_lib
from maskgit_jax.models import layers

_init = layers.PRE_LN_INIT
Cache = jax.Array  # float32 [layers, 2, batch, num_tokens, heads, head_dim]


class CausalTransformer(nn.Module):
  """``ids [b, s] -> logits [b, s, codebook_size]`` (float32), causal.

  Attributes:
    codebook_size: image codes (the logits' size).
    num_classes: class tokens (with the null class when trained with label
      dropout).
    num_tokens: image tokens per sequence ``L`` (positions ``0 .. L-1``).
    hidden_size, num_layers, num_heads, mlp_dim: the blocks.
    dropout_rate, attention_dropout_rate: training dropout.
  """

  codebook_size: int
  num_classes: int
  num_tokens: int
  hidden_size: int = 256
  num_layers: int = 4
  num_heads: int = 4
  mlp_dim: int = 1024
  dropout_rate: float = 0.0
  attention_dropout_rate: float = 0.0

  @property
  def layout(self) -> tokens_lib.TokenLayout:
    return tokens_lib.TokenLayout(self.codebook_size, self.num_classes)

  def setup(self):
    self.word_embeddings = layers.learned_embedding(
        self.layout.vocab_size, self.hidden_size, "vocab")
    self.position_embeddings = layers.learned_embedding(
        self.num_tokens, self.hidden_size, "pos")
    self.blocks = [layers.PreLNBlock(self.num_heads, self.mlp_dim,
                                     self.dropout_rate,
                                     self.attention_dropout_rate,
                                     name=f"block_{i}")
                   for i in range(self.num_layers)]
    self.final_ln = layers.layer_norm("final_ln", jnp.float32, jnp.float32)
    self.head = layers.dense(self.codebook_size, ("embed", "vocab"), _init,
                             jnp.float32, jnp.float32, name="head")
    self.dropout = nn.Dropout(self.dropout_rate)

  def init_cache(self, batch: int) -> Cache:
    """Zeros ``[layers, 2, batch, num_tokens, heads, head_dim]``."""
    return jnp.zeros((self.num_layers, 2, batch, self.num_tokens,
                      self.num_heads, self.hidden_size // self.num_heads),
                     jnp.float32)

  def _run(self, ids, positions, cache, pos, deterministic):
    if ids.shape[1] > self.num_tokens:
      raise ValueError(f"sequence length {ids.shape[1]} exceeds num_tokens "
                       f"{self.num_tokens}")
    x = self.word_embeddings(ids) + self.position_embeddings(positions)[None]
    x = self.dropout(x, deterministic=deterministic)
    written = []
    for i, block in enumerate(self.blocks):
      x, kv = block(x, positions,
                    None if cache is None else (cache[i], pos), deterministic)
      written.append(kv)
    logits = self.head(self.final_ln(x)).astype(jnp.float32)
    logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
    return logits, (None if cache is None else jnp.stack(written))

  def __call__(self, ids: jax.Array, deterministic: bool = True) -> jax.Array:
    """A causal pass over ``ids [b, s]`` at positions ``0 .. s-1``."""
    return self._run(ids, jnp.arange(ids.shape[1]), None, 0,
                     deterministic)[0]

  def extend(self, ids: jax.Array, cache: Cache, pos
             ) -> tuple[jax.Array, Cache]:
    """``ids [b, s]`` at positions ``pos ..`` against ``cache`` (inference).

    ``pos`` may be traced. Returns logits ``[b, s, codebook]`` and the cache
    with these positions' keys and values written.
    """
    positions = pos + jnp.arange(ids.shape[1])
    return self._run(ids, positions, cache, pos, True)


def next_token_inputs(labels_or_tokens: jax.Array, tokens: jax.Array,
                      layout: tokens_lib.TokenLayout) -> jax.Array:
  """int32 ``[b, L]``: ``[class_token, t_0, ..., t_{L-2}]`` for targets
  ``tokens [b, L]`` (``labels_or_tokens``: class labels ``[b]``)."""
  first = layout.class_token(labels_or_tokens)[:, None]
  return jnp.concatenate([first, tokens[:, :-1]], axis=1).astype(jnp.int32)
