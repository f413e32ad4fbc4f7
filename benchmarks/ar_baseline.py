"""Autoregressive baselines for the decode benchmark.

The library's own autoregressive prior
(:class:`maskgit_jax.models.causal_transformer.CausalTransformer`, the
model ``train.py`` trains with ``config.stage = "ar"``) with random
weights, decoded two ways (:mod:`maskgit_jax.decoding.ar_decode`):

* :func:`recompute_decode`: the paper's kind of baseline. Every step re-runs
  the causal transformer over the whole fixed-length sequence and samples
  the next token from the logits at its position: ``L`` full forward passes.
* :func:`kv_cache_decode`: the key/value-cached decoder the trained prior
  samples with. Every step feeds one token and attends to the cached
  keys/values: about ``1/L`` of a forward pass of arithmetic per step, but
  ``L`` sequential steps.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from maskgit_jax.decoding import ar_decode
from maskgit_jax.models.causal_transformer import CausalTransformer


def prior(*, codebook: int, classes: int, hidden: int, layers: int,
          heads: int, mlp: int, tokens: int) -> CausalTransformer:
  """The library's prior at a benchmark size (``classes`` class tokens)."""
  return CausalTransformer(codebook_size=codebook, num_classes=classes,
                           num_tokens=tokens, hidden_size=hidden,
                           num_layers=layers, num_heads=heads, mlp_dim=mlp)


def init(model: CausalTransformer, seed: int = 0):
  """Random params of ``model``."""
  ids = jnp.zeros((1, model.num_tokens), jnp.int32)
  return jax.jit(model.init)(jax.random.PRNGKey(seed), ids)["params"]


def _masked(model: CausalTransformer, first: jax.Array) -> jax.Array:
  masks = jnp.full((first.shape[0], model.num_tokens), model.layout.mask_id)
  return jnp.concatenate([first[:, None], masks], 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "num_steps"))
def recompute_decode(model: CausalTransformer, params, first, rng, *,
                     num_steps: int | None = None):
  """``num_steps`` tokens (default all) after the class tokens ``first
  [b]``, each from a full causal pass: int32 ``[b, 1 + L]``."""
  return ar_decode.decode_recompute(params, _masked(model, first), rng,
                                    model=model, num_steps=num_steps)


@functools.partial(jax.jit, static_argnames=("model",))
def kv_cache_decode(model: CausalTransformer, params, first, rng):
  """All ``L`` tokens after ``first`` with the key/value cache."""
  return ar_decode.decode(params, _masked(model, first), rng, model=model)


def forward_flops(*, hidden: int, layers: int, mlp: int, vocab: int,
                  length: int, batch: int, causal_cache: int | None = None
                  ) -> float:
  """Analytic multiply-add FLOPs (x2) of one forward pass over ``length``
  positions attending to ``causal_cache or length`` keys."""
  keys = causal_cache or length
  per_token = layers * (2 * 4 * hidden * hidden + 2 * 2 * hidden * mlp
                        + 2 * 2 * keys * hidden) + 2 * hidden * vocab
  return float(batch * length * per_token)
