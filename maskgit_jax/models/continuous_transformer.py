"""The masked generator's body over continuous tokens (MAR, GIVT masked).

MaskGIT's transformer reads code ids; over a VAE's latents the inputs are
vectors. This body projects each token ``x [C]`` to the width, puts a
learned mask embedding where a token is unknown, prepends the class token
(the null class, when training drops labels, is the last class), adds
learned positions, runs the prior's pre-LN blocks bidirectionally
(:class:`~maskgit_jax.models.layers.PreLNBlock`, ``causal=False``) and a
final LayerNorm, and returns one condition vector ``z`` per image
position for a head (:mod:`maskgit_jax.models.continuous_heads`).

MAR's own body is an MAE-style encoder-decoder with 64 "buffer" tokens for
the class; this is the single-stack variant (GIVT's masked model, and
MAR's paper ablation of it), at the size of the demo's transformer.

Parameters carry the transformer's logical axis names.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.models import layers


class ContinuousTransformer(nn.Module):
  """``(x [b, L, C], mask [b, L], labels [b]) -> z [b, L, hidden]``.

  Attributes:
    channels: ``C`` per token.
    num_classes: class tokens (with the null class when labels are dropped).
    num_tokens: ``L`` image tokens.
    hidden_size, num_layers, num_heads, mlp_dim: the blocks.
    dropout_rate, attention_dropout_rate: training dropout.
  """

  channels: int
  num_classes: int
  num_tokens: int
  hidden_size: int = 128
  num_layers: int = 4
  num_heads: int = 4
  mlp_dim: int = 512
  dropout_rate: float = 0.1
  attention_dropout_rate: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, labels: jax.Array,
               deterministic: bool = True) -> jax.Array:
    """``x`` float ``[b, L, C]`` (masked entries are ignored), ``mask`` bool
    ``[b, L]`` (True: unknown), ``labels`` int ``[b]``; returns float32
    ``[b, L, hidden]``."""
    b, length, channels = x.shape
    if (length, channels) != (self.num_tokens, self.channels):
      raise ValueError(f"tokens of shape {(length, channels)}; the model "
                       f"takes {(self.num_tokens, self.channels)}")
    h = layers.dense(self.hidden_size, ("code_dim", "embed"),
                     layers.PRE_LN_INIT, jnp.float32, jnp.float32,
                     name="input")(x.astype(jnp.float32))
    unknown = self.param("mask_embedding", nn.with_logical_partitioning(
        layers.PRE_LN_INIT, ("embed",)), (self.hidden_size,))
    h = jnp.where(mask[..., None], unknown, h)
    cls = layers.learned_embedding(self.num_classes, self.hidden_size,
                                   "vocab")(labels)[:, None]
    h = jnp.concatenate([cls, h], 1)
    positions = jnp.arange(length + 1)
    h = h + layers.learned_embedding(length + 1, self.hidden_size, "pos")(
        positions)[None]
    h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    h = nn.with_logical_constraint(h, ("batch", "length", "embed"))
    for i in range(self.num_layers):
      h, _ = layers.PreLNBlock(self.num_heads, self.mlp_dim, self.dropout_rate,
                               self.attention_dropout_rate, causal=False,
                               name=f"block_{i}")(h, positions, None,
                                                  deterministic)
    h = layers.layer_norm("final_ln", jnp.float32, jnp.float32)(h)
    return h[:, 1:]
