"""Stage-1 recipes side by side at equal wall-clock minutes (animal-MNIST).

    python -m scripts.studies.tokenizer_study --out runs/tokenizer_study --minutes 3 \
        --classifier demo_out/classifier.npz          # make tokenizer-study

Every recipe is the demo tokenizer (``maskgit_jax/presets/
vqgan_animal_mnist.py``: 32x32 images, 8x8 tokens, 128 codes) with some
fields changed. Equal minutes: the step cost of every recipe is measured
first, in one pass under the same conditions, and each recipe then trains
``minutes * 60 / seconds_per_step`` steps (so a contended machine later
does not favour anyone). Per run: ms per step, held-out PSNR,
reconstruction FID in the evaluation classifier's features (train-split
reconstructions against the held-out split, as ``make demo`` computes it),
the share of held-out reconstructions the classifier still recognises,
codebook usage and perplexity. The classifier is the demo's judge: nothing
here trains or tunes against it. Results: ``OUT/tokenizer_study.json`` and
``.md`` (mean and seed std per recipe). Every run resumes.
"""

from __future__ import annotations

import functools
import json
import pathlib
import sys
import time

import flax.linen as nn
import jax
import numpy as np

from maskgit_jax.runtime import cli
from maskgit_jax.data import imageio
from maskgit_jax.data import input_pipeline
from maskgit_jax.runtime import restore
from maskgit_jax.evaluation import classifier as classifier_lib
from maskgit_jax.evaluation import metrics
from maskgit_jax.presets import vqgan_animal_mnist
from maskgit_jax.presets import common
from maskgit_jax.trainers import loop
from maskgit_jax.tools import train_perceptual as perceptual_training
from maskgit_jax.trainers import tasks

PERCEPTUAL = "<perceptual>"  # replaced by the trained network's path
GAN = {"losses.adaptive_adversarial_weight": True, "losses.r1_interval": 4,
       "losses.adversarial_weight": 0.1, "gan_start": 0.5}
RECIPES = {
    "l2": {},
    "l2+perceptual": {"perceptual_network": PERCEPTUAL,
                      "losses.perceptual_weight": 0.1},
    "l2+perceptual_logits": {"perceptual_network": PERCEPTUAL,
                             "perceptual_mode": "logits",
                             "losses.perceptual_weight": 0.1},
    "l2+gan": dict(GAN),
    "l2+perceptual+gan": {"perceptual_network": PERCEPTUAL,
                          "losses.perceptual_weight": 0.1, **GAN},
    "vq_ema": {"model.quantizer_type": "vq_ema",
               "losses.dead_code_restart": False},
    "factorized": {"model.quantizer_type": "factorized"},
    "lfq": {"model.quantizer_type": "lfq", "model.codebook_size": 128,
            "model.embedding_dim": 7,
            "model.entropy_loss_ratio": 0.1,
            "losses.dead_code_restart": False},
}


def recipe_config(name: str, overrides: dict, *, steps: int | None,
                  seed: int, perceptual_path: str, variant: str):
  """The demo tokenizer config with ``overrides`` applied."""
  config = vqgan_animal_mnist.get_config(variant)
  config.seed = seed
  common.override(config, {
      key: perceptual_path if value == PERCEPTUAL else value
      for key, value in overrides.items() if key != "gan_start"})
  if steps is not None:
    start = int(overrides.get("gan_start", 2.0) * steps)  # > steps: no GAN
    config.losses.discriminator_start_step = start
    config.update(num_train_steps=steps, checkpoint_every_steps=steps,
                  preview_every_steps=0,
                  log_every_steps=max(steps // 5, 1))
  config.variant = f"{config.variant}:{name}"
  return config


def seconds_per_step(config, batch: dict, repeats: int = 8) -> float:
  """The mean cost of steps ``0..repeats-1`` of ``config``'s train step,
  each phase compiled beforehand (see ``Task.phase``)."""
  task = tasks.make_task(config)
  state = nn.unbox(task.init(jax.random.PRNGKey(0)))
  phases = [task.phase(i) if task.phase else None for i in range(repeats)]
  programs = {p: jax.jit(functools.partial(task.step, phase=p))
              for p in set(phases)}
  for program in programs.values():  # compile, outside the timing
    jax.block_until_ready(program(state, batch, jax.random.PRNGKey(0),
                                  task.extras))
  start = time.perf_counter()
  for i, phase in enumerate(phases):
    state, m = programs[phase](state, batch, jax.random.PRNGKey(i),
                               task.extras)
  jax.block_until_ready(m)
  return (time.perf_counter() - start) / repeats


def recipe_cost(name: str, batch: dict, perceptual_path: str,
                variant: str) -> float:
  """Seconds per step of a recipe, averaged over its run: a recipe whose
  GAN starts at a share ``s`` of the steps costs ``s * off + (1 - s) * on``
  (the discriminator's forward and backward run only once it starts)."""
  overrides = RECIPES[name]
  config = recipe_config(name, overrides, steps=None, seed=0,
                         perceptual_path=perceptual_path, variant=variant)
  config.losses.discriminator_start_step = 10**9
  off = seconds_per_step(config, batch)
  if "gan_start" not in overrides:
    return off
  config.losses.discriminator_start_step = 0
  share = overrides["gan_start"]
  return share * off + (1 - share) * seconds_per_step(config, batch)


def evaluate(workdir, judge, data, num_reference: int) -> dict:
  """Reconstruction metrics of a trained tokenizer (see module doc)."""
  model, params = restore.load_tokenizer(workdir)
  apply = jax.jit(lambda p, x: model.apply({"params": p}, x)[0])
  encode = jax.jit(lambda p, x: model.apply(
      {"params": p}, x, method=model.encode_to_indices))

  def reconstruct(images):
    out = [np.asarray(apply(params, imageio.to_float(images[i:i + 500])))
           for i in range(0, len(images), 500)]
    return np.concatenate(out)

  test, test_labels, train = data
  recon = reconstruct(test)
  ids = np.concatenate([np.asarray(encode(params, imageio.to_float(
      test[i:i + 500]))) for i in range(0, len(test), 500)])
  mse = np.mean((recon.clip(0, 1) - test / 255.0) ** 2)
  share = np.bincount(ids.reshape(-1), minlength=model.codebook_size)
  share = share / share.sum()
  nonzero = share[share > 0]
  reference = metrics.Statistics.of(judge.features(test))
  train_recon = imageio.to_uint8(reconstruct(train[:num_reference]))
  return {
      "psnr": float(10 * np.log10(1.0 / mse)),
      "reconstruction_fid": metrics.frechet_distance(
          metrics.Statistics.of(judge.features(train_recon)), reference),
      "reconstruction_class_accuracy": judge.accuracy(
          imageio.to_uint8(recon), test_labels),
      "codebook_usage": float((share > 0).mean()),
      "perplexity": float(np.exp(-np.sum(nonzero * np.log(nonzero)))),
  }


def _summary(rows: list[dict]) -> list[dict]:
  keys = ("ms_per_step", "steps", "psnr", "reconstruction_fid",
          "reconstruction_class_accuracy", "codebook_usage", "perplexity")
  table = []
  for name in dict.fromkeys(r["recipe"] for r in rows):
    runs = [r for r in rows if r["recipe"] == name]
    entry = {"recipe": name, "seeds": len(runs)}
    for k in keys:
      values = np.array([r[k] for r in runs], np.float64)
      entry[k] = float(values.mean())
      entry[f"{k}_std"] = float(values.std(ddof=1)) if len(runs) > 1 else None
    table.append(entry)
  return table


def _markdown(table: list[dict], minutes: float) -> str:
  def cell(e, k, fmt):
    std = e[f"{k}_std"]
    return fmt.format(e[k]) + ("" if std is None else " ± " + fmt.format(std))
  lines = [f"Equal budget: {minutes:g} minutes of measured step time per run.",
           "", "| recipe | seeds | ms/step | steps | PSNR (dB) | "
           "reconstruction FID | recognised | codebook usage | perplexity |",
           "|---|---|---|---|---|---|---|---|---|"]
  for e in table:
    lines.append(
        f"| {e['recipe']} | {e['seeds']} | {e['ms_per_step']:.0f} | "
        f"{e['steps']:.0f} | {cell(e, 'psnr', '{:.2f}')} | "
        f"{cell(e, 'reconstruction_fid', '{:.1f}')} | "
        f"{cell(e, 'reconstruction_class_accuracy', '{:.3f}')} | "
        f"{cell(e, 'codebook_usage', '{:.2f}')} | "
        f"{cell(e, 'perplexity', '{:.1f}')} |")
  return "\n".join(lines) + "\n"


def run(args) -> int:
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  names = args.recipes.split(",") if args.recipes else list(RECIPES)
  unknown = [n for n in names if n not in RECIPES]
  if unknown:
    raise ValueError(f"unknown recipes {unknown}; expected {list(RECIPES)}")
  seeds = {n: [0] for n in names}
  for name in (args.more_seeds.split(",") if args.more_seeds else []):
    if name not in names:
      raise ValueError(f"--more_seeds names {name!r}, not a chosen recipe")
    seeds[name] = list(range(args.seeds))
  judge = classifier_lib.Classifier.load(args.classifier)
  images, labels = input_pipeline.load_animal_mnist()
  train_idx = input_pipeline.animal_mnist_split("train")
  test_idx = input_pipeline.animal_mnist_split("test")
  size = vqgan_animal_mnist.get_config(args.variant).image_size
  crop = lambda x: np.stack([input_pipeline.center_crop(im, size) for im in x])
  rng = np.random.default_rng(0)
  data = (crop(images[test_idx]), labels[test_idx],
          crop(images[rng.permutation(train_idx)]))

  perceptual_path = out / "perceptual.npz"
  if any(v == PERCEPTUAL for n in names for v in RECIPES[n].values()) and (
      not perceptual_path.exists()):
    print("training the perceptual network", flush=True)
    params = perceptual_training.train(
        images[train_idx], labels[train_idx], 10, steps=args.perceptual_steps)
    perceptual_training.save(perceptual_path, params, 10)

  costs_path = out / "seconds_per_step.json"
  costs = json.loads(costs_path.read_text()) if costs_path.exists() else {}
  batch_config = recipe_config("l2", {}, steps=None, seed=0,
                               perceptual_path="", variant=args.variant)
  batch = {"images": imageio.to_float(data[2][:batch_config.batch_size]),
           "labels": np.zeros((batch_config.batch_size,), np.int32)}
  for name in names:  # one pass, same conditions for every recipe
    if name not in costs:
      costs[name] = recipe_cost(name, batch, str(perceptual_path),
                                args.variant)
      print(f"{name}: {1000 * costs[name]:.0f} ms/step", flush=True)
      costs_path.write_text(json.dumps(costs, indent=1))

  rows = []
  for name in names:
    steps = max(int(args.minutes * 60 / costs[name]), 2)
    for seed in seeds[name]:
      workdir = out / f"{name}_seed{seed}"
      print(f"{name} seed {seed}: {steps} steps", flush=True)
      loop.train_and_evaluate(recipe_config(
          name, RECIPES[name], steps=steps, seed=seed,
          perceptual_path=str(perceptual_path), variant=args.variant),
          workdir)
      row = {"recipe": name, "seed": seed, "steps": steps,
             "ms_per_step": 1000 * costs[name],
             **evaluate(workdir, judge, data, args.num_reference)}
      print(json.dumps(row), flush=True)
      rows.append(row)
  table = _summary(rows)
  (out / "tokenizer_study.json").write_text(
      json.dumps({"minutes": args.minutes, "runs": rows, "table": table},
                 indent=1))
  (out / "tokenizer_study.md").write_text(_markdown(table, args.minutes))
  print(_markdown(table, args.minutes))
  return 0


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="runs/tokenizer_study")
  parser.add_argument("--minutes", type=float, default=3.0)
  parser.add_argument("--recipes", default="",
                      help=f"comma-separated, of {list(RECIPES)}")
  parser.add_argument("--more_seeds", default="l2",
                      help="recipes trained with --seeds seeds")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--classifier", default="demo_out/classifier.npz")
  parser.add_argument("--perceptual_steps", type=int, default=800)
  parser.add_argument("--num_reference", type=int, default=5000)
  parser.add_argument("--variant", default="default",
                      choices=vqgan_animal_mnist.VARIANTS)
  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
