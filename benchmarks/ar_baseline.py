"""Autoregressive baselines for the decode benchmark (not part of the library).

A causal (GPT-style, pre-LayerNorm) transformer of a given width, depth and
vocabulary, and two jitted ways to decode ``L`` tokens with it:

* :func:`recompute_decode`: the paper's kind of baseline. Every step re-runs
  the causal transformer over the whole fixed-length sequence (the unknown
  tail padded) and samples the next token from the logits at its position:
  ``L`` full forward passes.
* :func:`kv_cache_decode`: a key/value-cached decoder. Every step feeds one
  token and attends to the cached keys/values: about ``1/L`` of a forward
  pass of arithmetic per step, but ``L`` sequential steps.

Both share one module: ``CausalTransformer(ids, cache, pos)`` processes
``ids`` at positions ``pos ..``, writes their keys/values into ``cache`` and
attends causally to everything cached so far, so a full forward pass is the
special case ``pos = 0`` with an empty cache.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


class CausalBlock(nn.Module):
  hidden: int
  heads: int
  mlp: int

  @nn.compact
  def __call__(self, x, k_cache, v_cache, pos):
    """x ``[b, s, d]``; caches ``[b, L, heads, d/heads]``; pos: first position."""
    b, s, d = x.shape
    dh = d // self.heads
    h = nn.LayerNorm()(x)
    q, k, v = jnp.split(nn.Dense(3 * d)(h).reshape(b, s, 3 * self.heads, dh),
                        3, axis=2)
    k_cache = jax.lax.dynamic_update_slice(k_cache, k, (0, pos, 0, 0))
    v_cache = jax.lax.dynamic_update_slice(v_cache, v, (0, pos, 0, 0))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k_cache) / jnp.sqrt(dh)
    query_pos = pos + jnp.arange(s)[:, None]
    key_pos = jnp.arange(k_cache.shape[1])[None, :]
    scores = jnp.where(key_pos <= query_pos, scores, -1e9)
    attn = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, -1), v_cache)
    x = x + nn.Dense(d)(attn.reshape(b, s, d))
    h = nn.LayerNorm()(x)
    x = x + nn.Dense(d)(nn.gelu(nn.Dense(self.mlp)(h)))
    return x, k_cache, v_cache


class CausalTransformer(nn.Module):
  """``(ids [b, s], cache, pos) -> (logits [b, s, vocab], cache)``."""

  vocab_size: int
  hidden: int
  layers: int
  heads: int
  mlp: int
  max_len: int

  def init_cache(self, batch: int):
    shape = (self.layers, 2, batch, self.max_len, self.heads,
             self.hidden // self.heads)
    return jnp.zeros(shape, jnp.float32)

  @nn.compact
  def __call__(self, ids, cache, pos):
    s = ids.shape[1]
    x = nn.Embed(self.vocab_size, self.hidden)(ids)
    positions = nn.Embed(self.max_len, self.hidden)(pos + jnp.arange(s))
    x = x + positions[None]
    new = []
    for i in range(self.layers):
      x, k, v = CausalBlock(self.hidden, self.heads, self.mlp)(
          x, cache[i, 0], cache[i, 1], pos)
      new.append(jnp.stack([k, v]))
    logits = nn.Dense(self.vocab_size)(nn.LayerNorm()(x))
    return logits, jnp.stack(new)


def _sample(rng, logits, temperature):
  return jax.random.categorical(rng, logits / temperature).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "num_steps"))
def recompute_decode(model: CausalTransformer, params, first, rng, *,
                     num_steps: int, temperature=1.0):
  """Generates ``num_steps`` tokens after ``first`` ``[b]`` (class token).

  Each step runs the full fixed-length causal forward pass (length
  ``model.max_len``) and keeps the logits at the current position.

  Returns:
    int32 ``[b, max_len]``: ``first`` then the generated tokens (zeros
    beyond ``num_steps``).
  """
  batch = first.shape[0]
  ids = jnp.zeros((batch, model.max_len), jnp.int32).at[:, 0].set(first)
  empty = model.init_cache(batch)

  def body(t, carry):
    ids, rng = carry
    rng, step_rng = jax.random.split(rng)
    logits, _ = model.apply({"params": params}, ids, empty, 0)
    token = _sample(step_rng, logits[:, t], temperature)
    return ids.at[:, t + 1].set(token), rng

  ids, _ = jax.lax.fori_loop(0, num_steps, body, (ids, rng))
  return ids


@functools.partial(jax.jit, static_argnames=("model", "num_steps"))
def kv_cache_decode(model: CausalTransformer, params, first, rng, *,
                    num_steps: int, temperature=1.0):
  """As :func:`recompute_decode`, one token per step with a KV cache."""
  batch = first.shape[0]
  ids = jnp.zeros((batch, model.max_len), jnp.int32).at[:, 0].set(first)

  def body(t, carry):
    ids, cache, rng = carry
    rng, step_rng = jax.random.split(rng)
    token_in = jax.lax.dynamic_slice_in_dim(ids, t, 1, axis=1)
    logits, cache = model.apply({"params": params}, token_in, cache, t)
    token = _sample(step_rng, logits[:, 0], temperature)
    return ids.at[:, t + 1].set(token), cache, rng

  ids, _, _ = jax.lax.fori_loop(0, num_steps, body,
                                (ids, model.init_cache(batch), rng))
  return ids


def forward_flops(*, hidden: int, layers: int, mlp: int, vocab: int,
                  length: int, batch: int, causal_cache: int | None = None
                  ) -> float:
  """Analytic multiply-add FLOPs (x2) of one forward pass over ``length``
  positions attending to ``causal_cache or length`` keys."""
  keys = causal_cache or length
  per_token = layers * (2 * 4 * hidden * hidden + 2 * 2 * hidden * mlp
                        + 2 * 2 * keys * hidden) + 2 * hidden * vocab
  return float(batch * length * per_token)
