"""Token critics: which tokens of a filled-in sequence did the generator
sample? (Token-Critic, Lezama et al., ECCV 2022.)

A :class:`TokenCritic` is a bidirectional transformer body (a
:class:`~maskgit_jax.models.transformer.Transformer` without its MLM head)
and a one-unit head: ids ``[batch, length]`` -> float32 logits ``[batch,
length]``, high where the token looks sampled rather than real. Two ways to
build one, one module:

* **Token-Critic**: its own body, trained from scratch next to a frozen
  generator (``params = {"body": ..., "head": ...}``);
* **self-critic** (SCRIPT-style, as in lucidrains' ``SelfCritic``): the
  body *is* the frozen generator (its params under ``"body"``; the unused
  MLM head is ignored) and only the head is trained.

:class:`CriticScores` adapts a critic to
:func:`maskgit_jax.decoding.parallel_decode.decode`'s ``tokens_to_critic``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.models import transformer as transformer_lib


class TokenCritic(nn.Module):
  """A transformer body and a one-unit head per token.

  Attributes:
    body: the transformer whose last hidden states the head reads (its
      layout, class tokens and mask id are the critic's).
  """

  body: transformer_lib.Transformer

  @property
  def layout(self):
    return self.body.layout

  @nn.compact
  def __call__(self, ids: jax.Array, deterministic: bool = True) -> jax.Array:
    """int ``[batch, length]`` -> float32 logits ``[batch, length]``."""
    x = self.body(ids, deterministic, hidden_only=True)
    init = nn.initializers.truncated_normal(self.body.initializer_range)
    logit = nn.Dense(
        1, dtype=self.body.dtype, param_dtype=self.body.param_dtype,
        kernel_init=nn.with_logical_partitioning(init, ("embed", None)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                               (None,)),
        name="head")(x)
    return logit[..., 0].astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class CriticScores:
  """``tokens_to_critic(params, ids) -> [batch, length]`` logits of
  :class:`TokenCritic` for the decode; frozen and compared by value (one
  compilation per critic architecture)."""

  critic: TokenCritic

  def __call__(self, params, ids: jax.Array) -> jax.Array:
    return self.critic.apply({"params": params}, ids, deterministic=True)
