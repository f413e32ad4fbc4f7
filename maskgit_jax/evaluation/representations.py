"""Image features for the linear probe, one function per kind.

* ``pixels``: the image itself, ``[n, H * W * 3]`` in [0, 1];
* ``tokenizer``: the VQGAN's quantised latents, flattened ``[n, h * w * d]``;
* ``maskgit``: the MaskGIT transformer's last block over the unmasked
  tokens with the *null* class token (the real label would leak into the
  features; an unconditional model's one class), mean over the image
  positions ``[n, hidden]``;
* ``mage``: MAGE's encoder features (:meth:`maskgit_jax.models.mage.MAGE.features`:
  the last block over [C] and the unmasked tokens, mean over the image
  positions, normalised without a learned scale) ``[n, hidden]``.

Each kind also comes in the other ``pooling`` (so that the probes compare
like with like): ``"mean"`` over the image positions (pixels: ``[n, 3]``;
tokenizer: ``[n, d]``) or ``"flatten"`` (the models' last-block states of
every image position, ``[n, L * hidden]``); :data:`NATIVE` is each kind's
own. Each model kind returns ``images -> features``, jitted once (both
splits share the program) and run over fixed-size chunks
(:func:`maskgit_jax.runtime.batching.map_chunks`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.runtime import batching
from maskgit_jax.runtime import checkpointing
from maskgit_jax.data import imageio
from maskgit_jax.runtime import restore
from maskgit_jax.runtime import storage
from maskgit_jax.models import mage as mage_lib

KINDS = ("mage", "maskgit", "tokenizer", "pixels")
POOLINGS = ("mean", "flatten")
NATIVE = {"mage": "mean", "maskgit": "mean", "tokenizer": "flatten",
          "pixels": "flatten"}
CHUNK = 256


def pool(positions: jax.Array, pooling: str) -> jax.Array:
  """``[n, P, d]`` per-position features -> ``[n, d]`` ("mean") or
  ``[n, P * d]`` ("flatten")."""
  if pooling == "mean":
    return positions.mean(axis=1)
  return positions.reshape(positions.shape[0], -1)


def _chunked(fn: Callable) -> Callable[[np.ndarray], np.ndarray]:
  """uint8 images -> ``fn`` of float images, jitted once, over chunks."""
  jitted = jax.jit(fn)
  return lambda images: batching.map_chunks(
      lambda x: jitted(imageio.to_float(x)), [np.asarray(images)], CHUNK)


def pixels(images: np.ndarray, pooling: str = "flatten") -> np.ndarray:
  """uint8 ``[n, H, W, 3]`` -> float32 ``[n, H * W * 3]`` in [0, 1] (mean:
  ``[n, 3]``, the mean colour)."""
  x = imageio.to_float(images)
  return np.asarray(pool(x.reshape(len(x), -1, x.shape[-1]), pooling))


def tokenizer_latents(tokenizer, params, pooling: str = "flatten"
                      ) -> Callable[[np.ndarray], np.ndarray]:
  """uint8 images -> their quantised latents ``[n, h * w * d]`` (mean:
  ``[n, d]``)."""
  def fn(x):
    quantized, _ = tokenizer.apply({"params": params}, x,
                                   method=tokenizer.encode)
    return pool(quantized.reshape(x.shape[0], -1, quantized.shape[-1]),
                pooling)
  return _chunked(fn)


def _tokens(tokenizer, params, x: jax.Array) -> jax.Array:
  ids = tokenizer.apply({"params": params}, x,
                        method=tokenizer.encode_to_indices)
  return ids.reshape(x.shape[0], -1)


def maskgit_hidden(saved: restore.RestoredTransformer, pooling: str = "mean"
                   ) -> Callable[[np.ndarray], np.ndarray]:
  """uint8 images -> MaskGIT's pooled last-block states ``[n, hidden]``
  (null class token; flatten: ``[n, L * hidden]``).

  An unconditional model (one class) gets its one class token.

  Raises:
    ValueError: a class-conditional model without a null class (trained
      without label dropout): any class token would tell it a label.
  """
  model, layout = saved.model, saved.model.layout
  token = restore.unconditional_label(model.num_classes, saved.null_label)

  def fn(x):
    tokens = _tokens(saved.tokenizer, saved.tokenizer_params, x)
    labels = jnp.full((x.shape[0],), token, jnp.int32)
    ids = layout.make_sequence(labels, tokens)
    hidden = model.apply({"params": saved.params}, ids, hidden_only=True)
    return pool(hidden[:, 1:], pooling)
  return _chunked(fn)


def mage_features(saved: restore.RestoredTransformer, pooling: str = "mean"
                  ) -> Callable[[np.ndarray], np.ndarray]:
  """uint8 images -> MAGE's linear-probe features ``[n, hidden]`` (flatten:
  the last block's states of every image position, ``[n, L * hidden]``)."""
  model = saved.model

  def fn(x):
    tokens = _tokens(saved.tokenizer, saved.tokenizer_params, x)
    ids = mage_lib.sequences(tokens, jnp.zeros(tokens.shape, bool),
                             model.layout)
    if pooling == "mean":
      return model.apply({"params": saved.params}, ids, method=model.features)
    return pool(model.apply({"params": saved.params}, ids,
                            method=model.positions), pooling)
  return _chunked(fn)


def extractor(kind: str, checkpoint: str | None, pooling: str | None = None
              ) -> tuple[Callable[[np.ndarray], np.ndarray], int | None]:
  """``(images -> features, image size or None)`` for ``kind``.

  ``checkpoint``: a MAGE workdir for "mage", a MaskGIT stage-2 workdir for
  "maskgit", a tokenizer (or any stage-2) workdir for "tokenizer"; unused
  for "pixels". ``pooling``: one of :data:`POOLINGS` (None: the kind's
  :data:`NATIVE` one).

  Raises:
    ValueError: an unknown kind or pooling, or a checkpoint of the wrong
      stage.
    FileNotFoundError: a missing checkpoint.
  """
  if kind not in KINDS:
    raise ValueError(f"features must be one of {KINDS}, got {kind!r}")
  pooling = NATIVE[kind] if pooling is None else pooling
  if pooling not in POOLINGS:
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
  if kind == "pixels":
    return lambda images: pixels(images, pooling), None
  if checkpoint is None:
    raise ValueError(f"features={kind!r} needs a checkpoint")
  if kind == "mage":
    saved = restore.load_mage(checkpoint)
    return mage_features(saved, pooling), saved.image_size
  if kind == "maskgit":
    saved = restore.load_transformer(checkpoint)
    return maskgit_hidden(saved, pooling), saved.image_size
  if restore.checkpoint_stage(checkpoint) == "tokenizer":
    tokenizer, params = restore.load_tokenizer(checkpoint)
  else:
    config = checkpointing.read_config(storage.path(checkpoint))
    tokenizer, params = restore.load_tokenizer(restore.resolve_tokenizer(
        config.get("tokenizer_checkpoint"), storage.path(checkpoint)))
  return tokenizer_latents(tokenizer, params, pooling), None
