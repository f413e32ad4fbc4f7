"""Import of the released MaskGIT checkpoints (google-research/maskgit).

The four released files are Flax msgpack dumps of ``{'params': ...}``:
``tokenizer_imagenet{256,512}_checkpoint`` and
``maskgit_imagenet{256,512}_checkpoint``, linked from the official README
(https://github.com/google-research/maskgit) at
``https://storage.googleapis.com/maskgit-public/checkpoints/<name>``.
Either download them yourself and import::

    python -m maskgit_jax.runtime.official --tokenizer tokenizer_imagenet256_checkpoint \
        --transformer maskgit_imagenet256_checkpoint --out imported/in256

reads them with ``flax.serialization.msgpack_restore`` (no pickle), infers
every architecture hyperparameter from the array shapes, and writes two
Orbax workdirs that the rest of the library loads like its own::

    OUT/tokenizer/checkpoints/0    stage-1 params + config
    OUT/checkpoints/0              stage-2 params (also as EMA params) + config
                                   (config.tokenizer_checkpoint = "tokenizer")

or let :func:`fetch_released` (``Generator.from_pretrained("imagenet256")``,
``sample.py --pretrained=imagenet256``) read them from the public bucket
and import them once into a cache (``$MASKGIT_JAX_CACHE``, default
``~/.cache/maskgit_jax``); later calls load the cached import. This is
the only place the library reads from the network, and only when asked.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.runtime import checkpointing
from maskgit_jax.runtime import cli
from maskgit_jax.runtime import sharding
from maskgit_jax.runtime import storage


def read_msgpack(path: storage.PathLike) -> dict:
  """The ``params`` tree of an official checkpoint file (numpy arrays)."""
  path = storage.require_file(path, "checkpoint file")
  try:
    tree = flax.serialization.msgpack_restore(path.read_bytes())
  except Exception as e:  # msgpack raises several types on foreign bytes
    raise ValueError(f"{path} is not a Flax msgpack checkpoint "
                     f"({type(e).__name__})") from e
  if not isinstance(tree, dict):
    raise ValueError(f"{path} does not hold a parameter tree")
  params = tree.get("params", tree)
  return jax.tree_util.tree_map(np.asarray, params)


def _indexed(tree: dict, prefix: str) -> list[dict]:
  found = sorted((int(m.group(1)), v) for k, v in tree.items()
                 if (m := re.fullmatch(prefix + r"_(\d+)", k)))
  return [v for _, v in found]


def infer_tokenizer(params: dict) -> dict:
  """VQGAN fields (see :class:`maskgit_jax.models.vqgan.VQGAN`) from shapes.

  Raises:
    ValueError: when the tree is not an official tokenizer's.
  """
  try:
    codebook = params["quantizer"]["codebook"]
    encoder, decoder = params["encoder"], params["decoder"]
    filters = encoder["Conv_0"]["kernel"].shape[-1]
    blocks = _indexed(encoder, "ResBlock")
    decoder_convs = _indexed(decoder, "Conv")
  except (KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"not an official MaskGIT tokenizer tree (missing {e})"
                     ) from e
  # Decoder convs: the input conv, one per upsampling, the output conv.
  levels = len(decoder_convs) - 1
  if levels < 1 or len(blocks) % (levels + 1):
    raise ValueError(f"tokenizer tree with {len(blocks)} encoder ResBlocks "
                     f"and {levels} levels is not the official layout")
  res_blocks = len(blocks) // (levels + 1)
  multipliers = tuple(
      int(blocks[l * res_blocks]["Conv_1"]["kernel"].shape[-1] // filters)
      for l in range(levels))
  return dict(filters=int(filters), num_res_blocks=res_blocks,
              channel_multipliers=multipliers,
              embedding_dim=int(codebook.shape[1]),
              codebook_size=int(codebook.shape[0]))


def infer_transformer(params: dict, codebook_size: int) -> dict:
  """Transformer fields (see :class:`maskgit_jax.models.transformer.Transformer`).

  The vocabulary is ``codebook + classes + 1``, so the tokenizer's codebook
  size fixes the number of classes.
  """
  try:
    embed = params["Embed_0"]
    vocab, hidden = embed["word_embeddings"]["embedding"].shape
    positions = embed["position_embeddings"]["embedding"].shape[0]
    layers = _indexed(params, "TransformerLayer")
    query = layers[0]["Attention_0"]["self_attention"]["query"]["kernel"]
    mlp = layers[0]["Mlp_0"]["intermediate_output"]["kernel"].shape[1]
  except (KeyError, TypeError, IndexError, AttributeError) as e:
    raise ValueError(f"not an official MaskGIT transformer tree (missing {e})"
                     ) from e
  classes = vocab - codebook_size - 1
  if classes < 0:
    raise ValueError(f"transformer vocabulary {vocab} is smaller than the "
                     f"tokenizer codebook {codebook_size} + 1")
  return dict(codebook_size=codebook_size, num_classes=int(classes),
              hidden_size=int(hidden), num_layers=len(layers),
              num_heads=int(query.shape[1]), mlp_dim=int(mlp),
              max_position_embeddings=int(positions))


def import_checkpoints(tokenizer_path, transformer_path,
                       out: storage.PathLike) -> dict[str, Any]:
  """Writes the two workdirs described in the module docstring.

  Returns:
    ``{"tokenizer": fields, "transformer": fields, "image_size": int}``.
  """
  from maskgit_jax.presets import maskgit_imagenet  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_imagenet  # pylint: disable=g-import-not-at-top
  tok_params = read_msgpack(tokenizer_path)
  tf_params = read_msgpack(transformer_path)
  tok_fields = infer_tokenizer(tok_params)
  tf_fields = infer_transformer(tf_params, tok_fields["codebook_size"])
  grid = math.isqrt(tf_fields["max_position_embeddings"] - 1)
  if grid * grid + 1 != tf_fields["max_position_embeddings"]:
    raise ValueError(f"{tf_fields['max_position_embeddings']} positions are "
                     "not a square token grid plus the class token")
  factor = 2 ** (len(tok_fields["channel_multipliers"]) - 1)
  image_size = grid * factor

  out = storage.path(out)
  tok_config = vqgan_imagenet.get_config("256")
  tok_config.model.update(tok_fields)
  tok_config.image_size = image_size
  tf_config = maskgit_imagenet.get_config("512" if grid >= 32 else "256")
  tf_config.model.update(tf_fields)
  tf_config.update(image_size=image_size, token_factor=factor,
                   tokenizer_checkpoint="tokenizer")
  tf_params = jax.tree_util.tree_map(jnp.asarray, tf_params)
  for workdir, config, state in (
      (out / "tokenizer", tok_config,
       {"step": jnp.zeros((), jnp.int32),
        "params": jax.tree_util.tree_map(jnp.asarray, tok_params)}),
      (out, tf_config, {"step": jnp.zeros((), jnp.int32), "params": tf_params,
                        "ema_params": tf_params})):
    checkpointing.write_once(workdir, state, config.to_dict())
  return {"tokenizer": tok_fields, "transformer": tf_fields,
          "image_size": image_size}


PUBLIC_CHECKPOINTS = "gs://maskgit-public/checkpoints"
RELEASED = {  # name -> (tokenizer object, transformer object)
    "imagenet256": ("tokenizer_imagenet256_checkpoint",
                    "maskgit_imagenet256_checkpoint"),
    "imagenet512": ("tokenizer_imagenet512_checkpoint",
                    "maskgit_imagenet512_checkpoint"),
}
_DONE = "imported.json"  # written last: its presence marks a whole import


def cache_root() -> storage.epath.Path:
  """``$MASKGIT_JAX_CACHE`` or ``~/.cache/maskgit_jax`` (may be ``gs://``)."""
  return storage.path(os.environ.get("MASKGIT_JAX_CACHE") or
                      os.path.expanduser("~/.cache/maskgit_jax"))


def fetch_released(name: str, cache_dir: storage.PathLike | None = None,
                   source: str = PUBLIC_CHECKPOINTS) -> storage.epath.Path:
  """The imported workdir of released model ``name``, imported on first use.

  Args:
    name: ``"imagenet256"`` or ``"imagenet512"``.
    cache_dir: where imports are kept (default :func:`cache_root`).
    source: the folder holding the released objects.

  Returns:
    ``cache_dir/name``, a workdir ``Generator.from_checkpoint`` loads.

  A half-written import (no ``imported.json``) is removed and redone. On
  several processes, process 0 imports first while the others wait, so a
  shared (``gs://``) cache is written once; a per-host cache is then
  imported by each host.
  """
  if name not in RELEASED:
    raise ValueError(f"no released model {name!r}; expected one of "
                     f"{sorted(RELEASED)}")
  out = sharding.process_zero_first(
      lambda: _fetch_once(name, cache_dir, source), f"fetch_released {name}")
  return out if out is not None else _fetch_once(name, cache_dir, source)


def _fetch_once(name: str, cache_dir, source: str) -> storage.epath.Path:
  out = storage.path(cache_dir or cache_root()) / name
  if (out / _DONE).exists():
    return out
  if out.exists():
    logging.warning("removing the unfinished import %s", out)
    out.rmtree()
  tokenizer, transformer = (f"{source}/{obj}" for obj in RELEASED[name])
  logging.info("importing %s from %s into %s (once)", name, source, out)
  summary = import_checkpoints(tokenizer, transformer, out)
  storage.write_text(out / _DONE, json.dumps(
      {"name": name, "tokenizer": tokenizer, "transformer": transformer,
       "image_size": summary["image_size"]}, indent=2))
  return out


def main(argv=None) -> int:
  parser = cli.ArgumentParser(
      description="Import the released MaskGIT checkpoints into Orbax dirs.")
  parser.add_argument("--tokenizer", required=True)
  parser.add_argument("--transformer", required=True)
  parser.add_argument("--out", required=True)

  def run(args):
    summary = import_checkpoints(args.tokenizer, args.transformer, args.out)
    print(f"imported into {args.out}: {summary}")

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
