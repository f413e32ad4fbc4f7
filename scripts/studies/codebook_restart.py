"""Does restarting dead codes help the tokenizer? One run, four settings.

Trains the tiny VQGAN (codebook 64, 8x8 tokens for 16x16 images) on fresh
batches of smooth random colour fields with: the official entropy loss or
none, each with and without dead-code restarts, and reports codebook usage,
perplexity and held-out reconstruction MSE::

    python -m scripts.studies.codebook_restart [--steps 400]
"""

from __future__ import annotations

import argparse
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.presets import vqgan_imagenet
from maskgit_jax.models import discriminator as discriminator_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import tokenizer_step


def smooth_images(rng, n, size=16):
  low = jax.random.uniform(rng, (n, 4, 4, 3))
  return jax.image.resize(low, (n, size, size, 3), "bilinear")


def run(entropy_ratio: float, restart: bool, steps: int, batch: int = 16):
  config = vqgan_imagenet.get_config("tiny")
  model_cfg = dict(config.model, entropy_loss_ratio=entropy_ratio)
  trainer = tokenizer_step.TokenizerTrainer(
      vqgan=vqgan_lib.VQGAN(**model_cfg),
      discriminator=discriminator_lib.StyleGANDiscriminator(
          **config.discriminator),
      optimizer=tokenizer_step.adam_optimizer(1e-3),
      disc_optimizer=tokenizer_step.adam_optimizer(1e-3),
      weights=tokenizer_step.LossWeights(
          perceptual_weight=0.0, discriminator_start_step=10**9,
          dead_code_restart=restart))
  rng = jax.random.PRNGKey(0)
  state = nn.unbox(trainer.init(rng, smooth_images(rng, batch)))
  step = jax.jit(trainer.train_step)
  for i in range(steps):
    data_rng = jax.random.fold_in(jax.random.PRNGKey(1), i)
    state, metrics = step(state, smooth_images(data_rng, batch),
                          jax.random.fold_in(rng, i))
  held_out = smooth_images(jax.random.PRNGKey(999), 256)
  recon, aux = trainer.vqgan.apply({"params": state.params}, held_out)
  _, usage, perplexity = tokenizer_step.code_statistics(
      aux["ids"], trainer.vqgan.codebook_size)
  return {"entropy_loss_ratio": entropy_ratio, "dead_code_restart": restart,
          "steps": steps, "held_out_mse": float(jnp.mean((recon - held_out)**2)),
          "codebook_usage": float(usage), "perplexity": float(perplexity)}


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--out", default="docs/studies/codebook_restart.json")
  args = parser.parse_args()
  rows = []
  for entropy_ratio in (0.1, 0.0):
    for restart in (False, True):
      start = time.perf_counter()
      row = run(entropy_ratio, restart, args.steps)
      row["seconds"] = time.perf_counter() - start
      print(json.dumps(row), flush=True)
      rows.append(row)
  with open(args.out, "w") as f:
    json.dump({"jax": jax.__version__, "date": time.strftime("%Y-%m-%d"),
               "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
