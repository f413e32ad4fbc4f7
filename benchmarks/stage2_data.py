"""Stage-2 data: tokenizing on the fly vs cached tokens, in one run.

Times the stage-2 train step of the animal-MNIST demo config (batch 64,
32x32 images, 8x8 tokens) fed (a) images that the frozen tokenizer encodes
inside the step and (b) tokens cached by ``maskgit_jax.tools.pretokenize``,
including data loading, after compilation::

    python -m benchmarks.stage2_data [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import flax.linen as nn
import jax

from maskgit_jax.presets import maskgit_animal_mnist
from maskgit_jax.presets import vqgan_animal_mnist
from maskgit_jax.data import input_pipeline
from maskgit_jax.tools import pretokenize
from maskgit_jax.trainers import loop
from maskgit_jax.trainers import tasks


def _steps_per_second(config, steps: int) -> float:
  task = tasks.make_task(config)
  source = input_pipeline.make_source(config.data.name, config.data.split)
  loader = input_pipeline.LocalBatchLoader(
      source, input_pipeline.BatchPlan(len(source), config.batch_size, 0),
      input_pipeline.make_preprocess(source, image_size=config.image_size,
                                     train=True,
                                     min_scale=config.data.min_scale))
  state = nn.unbox(task.init(jax.random.PRNGKey(0)))
  step = jax.jit(task.step, donate_argnums=(0,))
  state, metrics = step(state, loader(0), jax.random.PRNGKey(0), task.extras)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for i in range(1, steps + 1):
    state, metrics = step(state, loader(i), jax.random.PRNGKey(i),
                          task.extras)
  jax.block_until_ready(metrics)
  return steps / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--out", default="benchmarks/stage2_data.json")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    tok_config = vqgan_animal_mnist.get_config()
    tok_config.update(num_train_steps=1, preview_every_steps=0)
    loop.train_and_evaluate(tok_config, f"{tmp}/tok")
    start = time.perf_counter()
    path = pretokenize.pretokenize(f"{tmp}/tok", "animal_mnist", "train", 32,
                                   f"{tmp}/tokens.npz",
                                   progress=lambda _: None)
    pretokenize_s = time.perf_counter() - start
    config = maskgit_animal_mnist.get_config()
    config.tokenizer_checkpoint = f"{tmp}/tok"
    on_the_fly = _steps_per_second(config, args.steps)
    config.data.name = f"tokens:{path}"
    cached = _steps_per_second(config, args.steps)
  result = {"jax": jax.__version__, "date": time.strftime("%Y-%m-%d"),
            "device": jax.devices()[0].device_kind,
            "on_the_fly_steps_per_s": on_the_fly,
            "cached_steps_per_s": cached, "speedup": cached / on_the_fly,
            "pretokenize_seconds_8000_images": pretokenize_s}
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
