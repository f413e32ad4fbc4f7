"""Ahead-of-time compile of a full-size train step, without allocating it.

Checks that a config's train step lowers and compiles for a device mesh and
reports XLA's per-device memory analysis, using abstract shapes only (no
parameter is ever materialised)::

    python -m maskgit_jax.tools.aot --config=configs/maskgit_imagenet.py:256 \
        --fake_devices=16

``--fake_devices=N`` simulates N CPU devices (it must come before jax is
imported, so this module reads it from ``sys.argv`` first). Stage 2 is
compiled with its on-the-fly tokenizer (the released tokenizer architecture
of ``configs/vqgan_imagenet.py``) so the memory includes tokenization.
"""

from __future__ import annotations

import os
import sys


def _set_fake_devices(argv) -> None:
  for arg in argv:
    if arg.startswith("--fake_devices="):
      count = int(arg.split("=", 1)[1])
      os.environ["XLA_FLAGS"] = (
          os.environ.get("XLA_FLAGS", "") +
          f" --xla_force_host_platform_device_count={count}").strip()
      os.environ["JAX_PLATFORMS"] = "cpu"


if __name__ == "__main__":
  _set_fake_devices(sys.argv)

# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from maskgit_jax.runtime import checkpointing
from maskgit_jax.runtime import cli
from maskgit_jax.runtime import sharding as sharding_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import tasks


def _abstract_tokenizer(image_size: int, continuous: bool = False):
  """The ImageNet tokenizer (the VQGAN, or the KL-16 VAE) with abstract
  params."""
  from maskgit_jax.presets import vae_imagenet, vqgan_imagenet
  preset = vae_imagenet if continuous else vqgan_imagenet
  model = vqgan_lib.VQGAN(**preset.get_config("256").model)
  params = jax.eval_shape(
      model.init, jax.random.PRNGKey(0),
      jnp.zeros((1, image_size, image_size, 3)))["params"]
  return model, nn.unbox(params)


def compile_train_step(config: ml_collections.ConfigDict) -> dict:
  """Lowers and compiles ``config``'s train step on the current devices.

  Returns:
    Sizes in bytes per device (arguments, outputs, temporaries, aliased,
    code, and ``peak_estimate = arguments + outputs + temporaries -
    aliased``), the mesh, the parameter count and the compile seconds.
  """
  mesh = sharding_lib.make_mesh(config.mesh_shape)
  rules = tuple(tuple(r) for r in config.logical_axis_rules)
  if config.stage == "transformer":
    task = tasks.transformer_task(
        config, tokenizer=_abstract_tokenizer(config.image_size))
  elif config.stage == "continuous":
    task = tasks.continuous_task(
        config, tokenizer=_abstract_tokenizer(config.image_size, True))
  else:
    task = tasks.make_task(config)
  rng = jax.random.PRNGKey(0)
  boxed = jax.eval_shape(task.init, rng)
  state_shardings = sharding_lib.logical_shardings(boxed, mesh, rules)
  state = checkpointing.abstract_like(nn.unbox(boxed), state_shardings)
  replicated = sharding_lib.replicated(mesh)
  batch_sharding = sharding_lib.batch_sharding(mesh)
  size, b = config.image_size, config.batch_size
  if config.stage == "continuous":  # cached latents instead of images
    grid = size // config.token_factor
    name, shape = "latents", (b, grid, grid, config.model.channels)
  else:
    name, shape = "images", (b, size, size, 3)
  batch = {
      name: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=batch_sharding),
      "labels": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=batch_sharding),
  }
  extras = jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
      task.extras)
  key = jax.ShapeDtypeStruct(rng.shape, rng.dtype, sharding=replicated)
  step = jax.jit(
      task.step,
      in_shardings=(state_shardings,
                    {name: batch_sharding for name in batch}, replicated,
                    jax.tree_util.tree_map(lambda _: replicated, task.extras)),
      out_shardings=(state_shardings, replicated), donate_argnums=(0,))
  start = time.perf_counter()
  with sharding_lib.mesh_context(mesh, rules):
    compiled = step.lower(state, batch, key, extras).compile()
  seconds = time.perf_counter() - start
  memory = compiled.memory_analysis()
  stats = {
      name: int(getattr(memory, f"{name}_size_in_bytes"))
      for name in ("argument", "output", "temp", "alias", "generated_code")
  }
  stats["peak_estimate"] = (stats["argument"] + stats["output"] +
                            stats["temp"] - stats["alias"])
  num_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
  return {"mesh": dict(mesh.shape), "devices": jax.device_count(),
          "batch_size": b, "num_params": int(num_params),
          "compile_seconds": round(seconds, 1), "bytes_per_device": stats}


def main(argv) -> None:
  """Flags: ``--config=PATH.py[:VARIANT]``, ``--fake_devices=N``."""
  del argv  # cli.run refuses stray arguments
  result = compile_train_step(cli.config_value(_CONFIG))
  gib = {k: round(v / 2**30, 3)
         for k, v in result["bytes_per_device"].items()}
  print(json.dumps(dict(result, gib_per_device=gib), indent=1))


if __name__ == "__main__":
  from absl import flags
  from ml_collections import config_flags
  _CONFIG = config_flags.DEFINE_config_file(
      "config", None, "Config file: PATH.py or PATH.py:VARIANT")
  flags.DEFINE_integer("fake_devices", 0, "Simulated CPU devices.")
  flags.mark_flags_as_required(["config"])
  cli.run(main)
