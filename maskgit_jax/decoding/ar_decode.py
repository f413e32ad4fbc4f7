"""Sampling the autoregressive prior: one token a step, raster order.

:func:`decode` keeps a key/value cache (one compiled program per shape: a
``lax.fori_loop`` over the ``L`` positions, each feeding one token);
:func:`decode_recompute` re-runs the whole causal pass every step, the
baseline of the paper's speed comparison. Under the same key both produce
the same tokens (a test).

A step's distribution: logits (with classifier-free guidance
``cond + w (cond - uncond)``, :mod:`maskgit_jax.decoding.guidance`'s
parameterisation, the unconditional half fed the null class token), divided
by ``temperature``, then ``top_k`` and ``top_p`` filtering
(:mod:`maskgit_jax.decoding.logit_filters`; None: off). Taming Transformers samples
with temperature 1.0 and top-k (its ImageNet script: k = 250 of 16,384
codes; ``top_p`` 1.0, off).

Known tokens: positions of the input sequence that are not the mask id are
kept (forced into the cache, not sampled). A raster-order model can only
condition on what comes before, so the known tokens must form a prefix of
every row: completing the bottom of an image (:func:`check_prefix`).
Step ``t`` draws with ``fold_in(rng, t)``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.decoding import guidance
from maskgit_jax.decoding import logit_filters


def check_prefix(sequences: np.ndarray, mask_id: int) -> None:
  """Raises ValueError unless each row's known image tokens form a prefix.

  Args:
    sequences: int ``[b, 1 + L]`` (class token first, ``mask_id`` unknown).
  """
  known = np.asarray(sequences)[:, 1:] != mask_id
  prefix = np.cumprod(known, axis=1).astype(bool)
  bad = np.flatnonzero((known != prefix).any(axis=1))
  if bad.size:
    row = int(bad[0])
    first_gap = int(np.argmin(known[row]))
    raise ValueError(
        f"row {row}: token {first_gap} is unknown but a later one is known; "
        "an autoregressive (raster-order) model can only complete the end "
        "of a sequence (the bottom rows of an image)")


def _step_logits(model, params, ids, cache, t, null_token, cfg_scale):
  """Logits ``[b, codebook]`` for position ``t`` from ``ids [b, 1]``."""
  if cfg_scale is None:
    logits, cache = model.apply({"params": params}, ids, cache, t,
                                method=model.extend)
    return logits[:, 0], cache
  uncond = jnp.where(t == 0, jnp.full_like(ids, null_token), ids)
  both, cache = model.apply({"params": params},
                            jnp.concatenate([ids, uncond], 0), cache, t,
                            method=model.extend)
  cond, free = jnp.split(both[:, 0], 2)
  return guidance.combine(cond, free, jnp.asarray(cfg_scale, jnp.float32)), cache


def _draw(rng, logits, t, temperature, top_k, top_p):
  logits = logits / jnp.maximum(jnp.asarray(temperature, jnp.float32), 1e-6)
  logits = logit_filters.filter_logits(logits, top_k, top_p)
  return jax.random.categorical(jax.random.fold_in(rng, t),
                                logits).astype(jnp.int32)


def _keep_known(sequence, t, sampled, mask_id):
  given = sequence[:, t + 1]
  return sequence.at[:, t + 1].set(jnp.where(given == mask_id, sampled, given))


@functools.partial(jax.jit, static_argnames=("model", "guided"))
def decode(params, sequence: jax.Array, rng: jax.Array, *,
           model, temperature=1.0,
           top_k=None, top_p=None, guided: bool = False, cfg_scale=0.0,
           null_token=None) -> jax.Array:
  """Samples the unknown tokens of ``sequence`` with a key/value cache.

  Args:
    params: the prior's params.
    sequence: int32 ``[b, 1 + L]``: class token, then image tokens with the
      layout's mask id where to sample (known tokens must be a prefix).
    rng: the decode's key (step ``t`` uses ``fold_in(rng, t)``).
    model: the prior, a ``models.causal_transformer.CausalTransformer``
      (its ``layout``, ``num_tokens``, ``init_cache`` and ``extend``).
    temperature, top_k, top_p, cfg_scale: traced (changing them does not
      compile again); ``top_k``/``top_p`` None: off.
    guided: classifier-free guidance (static; needs ``null_token``).
    null_token: the null class's token id.

  Returns:
    int32 ``[b, 1 + L]``: ``sequence`` with every mask id replaced.
  """
  mask_id = model.layout.mask_id
  batch = sequence.shape[0]
  scale = cfg_scale if guided else None

  def body(t, carry):
    sequence, cache = carry
    ids = jax.lax.dynamic_slice_in_dim(sequence, t, 1, axis=1)
    logits, cache = _step_logits(model, params, ids, cache, t, null_token,
                                 scale)
    sampled = _draw(rng, logits, t, temperature, top_k, top_p)
    return _keep_known(sequence, t, sampled, mask_id), cache

  cache = model.init_cache(2 * batch if guided else batch)
  sequence, _ = jax.lax.fori_loop(0, model.num_tokens, body,
                                  (sequence.astype(jnp.int32), cache))
  return sequence


@functools.partial(jax.jit, static_argnames=("model", "guided", "num_steps"))
def decode_recompute(params, sequence: jax.Array, rng: jax.Array, *,
                     model, temperature=1.0,
                     top_k=None, top_p=None, guided: bool = False,
                     cfg_scale=0.0, null_token=None,
                     num_steps: int | None = None) -> jax.Array:
  """As :func:`decode`, re-running the full causal pass (length ``L``,
  unknown positions fed the mask id) at every step: ``L`` forward passes.

  ``num_steps``: stop after this many positions (the speed benchmark
  times a few and extrapolates); default all ``L``.
  """
  mask_id = model.layout.mask_id
  length = model.num_tokens

  def body(t, sequence):
    ids = sequence[:, :length]
    if guided:
      uncond = ids.at[:, 0].set(null_token)
      both = model.apply({"params": params}, jnp.concatenate([ids, uncond]))
      cond, free = jnp.split(both[:, t], 2)
      logits = guidance.combine(cond, free, jnp.asarray(cfg_scale, jnp.float32))
    else:
      logits = model.apply({"params": params}, ids)[:, t]
    sampled = _draw(rng, logits, t, temperature, top_k, top_p)
    return _keep_known(sequence, t, sampled, mask_id)

  return jax.lax.fori_loop(0, num_steps or length, body,
                           sequence.astype(jnp.int32))
