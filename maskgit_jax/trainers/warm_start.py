"""Fine-tuning: a fresh run's weights taken from another workdir.

``config.init_from=WORKDIR`` (a training workdir, or one written by
``python -m maskgit_jax.runtime.official``, local or ``gs://``) seeds a run that
has no checkpoint of its own; a resumed run ignores it. Per state field
(``params``, ``ema_params``, ``disc_params``):

* leaves present in both with equal shapes are copied (``ema_params``
  falls back to the source's ``params``);
* the token table of a transformer whose class count changed (``[vocab,
  ...]`` leaves named ``word_embeddings`` or ``mlm_bias``, vocab = codes +
  classes + mask) keeps the source's code rows and mask row and its own
  freshly initialised class rows;
* leaves the source lacks keep their initialisation (a fresh
  discriminator when the source is the imported tokenizer);
* any other shape difference is refused in one line naming every leaf.

The optimizer state and the step start fresh.
"""

from __future__ import annotations

import logging
from typing import Any

import flax
import jax
from jax.experimental import multihost_utils
import numpy as np

from maskgit_jax.runtime import checkpointing
from maskgit_jax.runtime import storage

FIELDS = ("params", "ema_params", "disc_params")
_VOCAB_LEAVES = ("word_embeddings", "mlm_bias")


def merge(target: dict, source: dict, codebook_size: int | None
          ) -> tuple[dict, dict[str, list[str]]]:
  """``target`` with ``source``'s values where they fit (host arrays).

  Args:
    target, source: parameter trees (nested dicts of arrays).
    codebook_size: the codes of a token table (None: no table remapping).

  Returns:
    ``(merged, report)``; ``report`` lists ``copied``, ``remapped``,
    ``kept`` (absent in the source) and ``mismatched`` leaf paths.
  """
  flat_target = flax.traverse_util.flatten_dict(target, sep="/")
  flat_source = flax.traverse_util.flatten_dict(source, sep="/")
  report = {"copied": [], "remapped": [], "kept": [], "mismatched": []}
  merged = {}
  for name, value in flat_target.items():
    value = np.asarray(value)
    if name not in flat_source:
      merged[name] = value
      report["kept"].append(name)
      continue
    src = np.asarray(flat_source[name])
    if src.shape == value.shape:
      merged[name] = src.astype(value.dtype)
      report["copied"].append(name)
    elif (codebook_size is not None and
          any(part in name for part in _VOCAB_LEAVES) and
          src.shape[1:] == value.shape[1:] and
          min(src.shape[0], value.shape[0]) > codebook_size):
      rows = value.copy()
      rows[:codebook_size] = src[:codebook_size]
      rows[-1] = src[-1]  # the mask token
      merged[name] = rows
      report["remapped"].append(name)
    else:
      merged[name] = value
      report["mismatched"].append(
          f"{name} {list(src.shape)} -> {list(value.shape)}")
  return flax.traverse_util.unflatten_dict(merged, sep="/"), report


def _place(host_tree, shardings):
  """Host arrays as global arrays laid out like ``shardings`` (every
  process holds the same host copy, so each fills its own shards)."""
  return jax.tree_util.tree_map(
      lambda x, s: jax.make_array_from_callback(x.shape, s,
                                                lambda idx: x[idx]),
      host_tree, shardings)


def warm_start(state, shardings, init_from: storage.PathLike,
               codebook_size: int | None) -> Any:
  """``state`` with its weight fields taken from ``init_from``'s latest step.

  Raises:
    FileNotFoundError: no checkpoint at ``init_from``.
    ValueError: leaves whose shapes differ (named, in one line).
  """
  source = checkpointing.restore_state_tree(init_from)
  updates, mismatched, lines = {}, [], []
  for field in FIELDS:
    if not hasattr(state, field):
      continue
    src = source.get(field)
    if src is None and field == "ema_params":
      src = source.get("params")
    if src is None:
      lines.append(f"{field}: fresh (not in {init_from})")
      continue
    # Whole host copies, also of leaves sharded over other hosts (FSDP).
    host = multihost_utils.process_allgather(getattr(state, field),
                                             tiled=True)
    merged, report = merge(host, src, codebook_size)
    mismatched += [f"{field}/{m}" for m in report["mismatched"]]
    lines.append(f"{field}: {len(report['copied'])} copied, "
                 f"{len(report['remapped'])} remapped (class rows fresh), "
                 f"{len(report['kept'])} fresh")
    updates[field] = _place(merged, getattr(shardings, field))
  if mismatched:
    raise ValueError(f"init_from {init_from}: {len(mismatched)} leaves differ "
                     f"in shape (source -> this model): "
                     f"{'; '.join(mismatched)}")
  logging.info("initialised from %s: %s", init_from, "; ".join(lines))
  return state.replace(**updates)
