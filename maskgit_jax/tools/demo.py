"""``make demo``: both stages on animal-MNIST, samples, edits and metrics.

    python -m maskgit_jax.tools.demo --out demo_out                 # make demo
    python -m maskgit_jax.tools.demo --out demo_out --variant long  # longer, better
    python -m maskgit_jax.tools.demo --out runs/base_s1 --seed 1 \
        --train_split train_minus_validation   # a study's base run

(times measured: docs/demo.md)

The host CPU is split into several XLA devices first (``--cpu_devices``;
see :func:`maskgit_jax.runtime.sharding.split_host_cpu`).

Steps, each resumable (re-running continues where it stopped):

1. a small CNN classifier on the train split (cached): the judge of the
   metrics, never trained on the held-out split they use as reference; the
   same network whatever ``--seed`` and ``--train_split`` say, so that runs
   compare;
2. the tokenizer's perceptual network (cached; another network than the
   judge) and the VQGAN tokenizer (``configs/vqgan_animal_mnist.py``);
3. the training split tokenized once (stage 2 then trains on cached tokens);
4. the MaskGIT transformer (``configs/maskgit_animal_mnist.py``);
5. ``samples.png`` (10 classes x 8), ``inpaint.png``,
   ``reconstructions.png`` and ``metrics.json`` (with the minutes of each
   stage).
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np

from maskgit_jax.runtime import cli

# Where the demo's metrics come from (see metrics.json): class-balanced
# samples against the held-out split, in the classifier's feature space.
NUM_EVAL_SAMPLES = 5000
# Steps of the tokenizer's perceptual network: with 300 the perceptual
# recipe lost to L2 alone (reconstruction FID 57 vs 36-47), with 800 it
# won (16.7 vs 26.1).
PERCEPTUAL_STEPS = 800
VARIANTS = ("default", "long", "tiny")
# What steps 2-4 may train on: the demo's "train", or "train" without the
# validation split, for a study that makes its choices on "validation".
TRAIN_SPLITS = ("train", "train_minus_validation")


def _log(message: str) -> None:
  print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _configs(variant: str, out: pathlib.Path, seed: int = 0,
             train_split: str = "train"):
  """The two stages' configs, wired to the files under ``out``: the
  tokenizer on ``train_split``, both seeded by the presets' seed + ``seed``."""
  from maskgit_jax.presets import maskgit_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import vqgan_animal_mnist  # pylint: disable=g-import-not-at-top
  tok = vqgan_animal_mnist.get_config(variant)
  maskgit = maskgit_animal_mnist.get_config(variant)
  if tok.losses.perceptual_weight:
    tok.perceptual_network = str(out / "perceptual.npz")
  maskgit.tokenizer_checkpoint = str(out / "tokenizer")
  maskgit.data.name = f"tokens:{out / 'tokens_train.npz'}"
  tok.data.split = train_split
  tok.seed += seed
  maskgit.seed += seed
  return tok, maskgit


def _classifier(out: pathlib.Path, images, labels, train_idx, tiny: bool):
  from maskgit_jax.evaluation import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  path = out / "classifier.npz"
  if path.exists():
    _log(f"classifier: cached at {path}")
    return classifier_lib.Classifier.load(path)
  _log("classifier: training a small CNN on the train split")
  model = classifier_lib.train(images[train_idx], labels[train_idx], 10,
                               steps=20 if tiny else 1500, log=_log)
  model.save(path)
  return model


def _perceptual(out: pathlib.Path, images, labels, train_idx, tiny: bool,
                seed: int) -> pathlib.Path:
  """The tokenizer's perceptual network (cached): not the judge."""
  from maskgit_jax.tools import train_perceptual as perceptual_lib  # pylint: disable=g-import-not-at-top
  path = out / "perceptual.npz"
  if path.exists():
    _log(f"perceptual network: cached at {path}")
    return path
  steps = 10 if tiny else PERCEPTUAL_STEPS
  _log(f"perceptual network: {steps} steps on the training split (for the "
       "tokenizer's perceptual loss; seeded and built apart from the judge)")
  params = perceptual_lib.train(images[train_idx], labels[train_idx], 10,
                                steps=steps, seed=perceptual_lib.SEED + seed,
                                log=_log)
  perceptual_lib.save(path, params, 10)
  return path


def _labelled_grid(images: np.ndarray, row_names, scale: int = 3):
  """uint8 ``[rows, cols, H, W, 3]`` -> a PIL image with row labels."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  rows, cols = images.shape[:2]
  grid = imageio.image_grid(images.reshape((-1,) + images.shape[2:]), cols)
  grid = Image.fromarray(grid).resize(
      (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
  margin = 70
  canvas = Image.new("RGB", (grid.width + margin, grid.height), "white")
  canvas.paste(grid, (margin, 0))
  draw = ImageDraw.Draw(canvas)
  row_height = grid.height // rows
  for r, name in enumerate(row_names):
    draw.text((4, r * row_height + row_height // 2 - 5), name, fill="black")
  return canvas


class _Stages:
  """Wall minutes per demo stage (``metrics.json["stage_minutes"]``)."""

  def __init__(self):
    self.minutes: dict[str, float] = {}
    self._last = time.time()

  def done(self, name: str) -> None:
    now = time.time()
    self.minutes[name] = round((now - self._last) / 60.0, 2)
    self._last = now


def _train_stages(out: pathlib.Path, variant: str, data, stages: _Stages,
                  seed: int = 0, train_split: str = "train"):
  """Judge, perceptual network, tokenizer, tokens, transformer (resumable).

  Returns the judge and its held-out accuracy.
  """
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import input_pipeline
  from maskgit_jax.tools import pretokenize
  from maskgit_jax.trainers import loop
  # pylint: enable=g-import-not-at-top
  images, labels, train_idx, test_idx = data
  tiny = variant == "tiny"
  judge = _classifier(out, images, labels, train_idx, tiny)
  accuracy = judge.accuracy(images[test_idx], labels[test_idx])
  _log(f"classifier: {accuracy:.1%} on the held-out split")
  stages.done("classifier")
  tok_config, maskgit_config = _configs(variant, out, seed, train_split)
  fit_idx = input_pipeline.animal_mnist_split(train_split)
  if tok_config.get("perceptual_network"):
    _perceptual(out, images, labels, fit_idx, tiny, seed)
    stages.done("perceptual_network")
  _log(f"tokenizer: {tok_config.num_train_steps} steps "
       f"(batch {tok_config.batch_size})")
  loop.train_and_evaluate(tok_config, out / "tokenizer")
  stages.done("tokenizer")
  tokens_path = out / "tokens_train.npz"
  if not tokens_path.exists():
    _log(f"tokenizing the {train_split} split once for stage 2")
    pretokenize.pretokenize(str(out / "tokenizer"), "animal_mnist", train_split,
                            tok_config.image_size, str(tokens_path),
                            progress=lambda _: None)
  stages.done("tokenize")
  _log(f"transformer: {maskgit_config.num_train_steps} steps "
       f"(batch {maskgit_config.batch_size})")
  loop.train_and_evaluate(maskgit_config, out / "maskgit")
  stages.done("transformer")
  return judge, accuracy


def run(out: pathlib.Path, variant: str = "default", *, seed: int = 0,
        train_split: str = "train") -> dict:
  """Runs every step (resuming finished ones) and returns the metrics.

  ``seed`` shifts every seed of the recipe (perceptual network, tokenizer,
  transformer; not the judge); ``train_split`` is one of ``TRAIN_SPLITS``.
  """
  if train_split not in TRAIN_SPLITS:
    raise ValueError(f"train_split {train_split!r}; expected one of "
                     f"{TRAIN_SPLITS}")
  start = time.time()
  out.mkdir(parents=True, exist_ok=True)
  cli.quiet_startup()
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import input_pipeline
  from maskgit_jax import sampling
  from maskgit_jax.evaluation import metrics as metrics_lib
  from maskgit_jax.runtime import machine
  # pylint: enable=g-import-not-at-top
  tiny = variant == "tiny"
  # Runs on different CPUs compare by this (one device, before training).
  matmul_rate = machine.matmul_gflops(256 if tiny else 1024)
  stages = _Stages()
  images, labels = input_pipeline.load_animal_mnist()
  train_idx = input_pipeline.animal_mnist_split("train")
  test_idx = input_pipeline.animal_mnist_split("test")
  names = input_pipeline.ANIMAL_MNIST_CLASSES
  stages.done("data")
  judge, classifier_accuracy = _train_stages(
      out, variant, (images, labels, train_idx, test_idx), stages, seed,
      train_split)
  test_images, test_labels = images[test_idx], labels[test_idx]

  # 64 rows (128 with guidance) keep the decode's activations in cache (on
  # a CPU, faster than one batch of every sample).
  gen = sampling.Generator.from_checkpoint(out / "maskgit", batch_size=64)
  size = gen.image_size
  if size != images.shape[1]:  # the tiny variant works on 16px images
    test_images = _resize(test_images, size)
  rng = np.random.default_rng(0)

  _log("writing samples.png, inpaint.png, reconstructions.png")
  grid_labels = np.repeat(np.arange(10), 8)
  shown = gen.generate(grid_labels, seed=1).reshape(10, 8, size, size, 3)
  _labelled_grid(shown, names).save(out / "samples.png")

  picks = np.concatenate([np.flatnonzero(test_labels == c)[:1]
                          for c in range(10)])
  originals = test_images[picks]
  mask = np.zeros((size, size), bool)
  mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
  masked = np.where(mask[..., None], 128, originals).astype(np.uint8)
  filled = gen.inpaint(originals, mask, label=test_labels[picks], seed=2)
  _labelled_grid(np.stack([originals, masked, filled]),
                 ["original", "masked", "inpainted"]).save(out / "inpaint.png")
  test_tokens = gen.encode(test_images)
  recon = gen.decode_tokens(test_tokens)
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  recon_u8 = imageio.to_uint8(recon)
  _labelled_grid(np.stack([originals, recon_u8[picks]]),
                 ["original", "tokens"]).save(out / "reconstructions.png")
  stages.done("pictures")

  num = 200 if tiny else NUM_EVAL_SAMPLES
  _log(f"metrics: {num} class-balanced samples")
  eval_labels = np.arange(num) % 10
  samples = gen.sample(eval_labels, seed=3)
  judged = judge.outputs(samples.images)
  sample_logits, fake = judged["logits"], judged["pool"]
  reference = judge.features(test_images)
  train_pick = rng.choice(train_idx, size=min(num, len(train_idx)),
                          replace=False)
  train_images = images[train_pick]
  if size != images.shape[1]:
    train_images = _resize(train_images, size)
  ref_stats = metrics_lib.Statistics.of(reference)

  def fd(features):
    return metrics_lib.frechet_distance(
        metrics_lib.Statistics.of(features), ref_stats)

  train_recon = imageio.to_uint8(gen.decode_tokens(gen.encode(train_images)))
  mse = np.mean((recon.clip(0, 1) - test_images / 255.0) ** 2)
  precision, recall = metrics_lib.precision_recall(reference, fake)
  accuracy_per_class = [
      float((sample_logits[eval_labels == c].argmax(-1) == c).mean())
      for c in range(10)]
  decode = gen.defaults
  stages.done("metrics")
  result = {
      "sample_class_accuracy": float(
          (sample_logits.argmax(-1) == eval_labels).mean()),
      "classifier_fid": fd(fake),
      "real_fid_floor": fd(judge.features(train_images)),
      "reconstruction_fid": fd(judge.features(train_recon)),
      "tokenizer_psnr": float(10 * np.log10(1.0 / mse)),
      "codebook_usage": float(len(np.unique(test_tokens)) /
                              gen.tokenizer.codebook_size),
      "classifier_test_accuracy": classifier_accuracy,
      "reconstruction_class_accuracy": judge.accuracy(recon_u8, test_labels),
      "precision": precision,
      "recall": recall,
      "classifier_inception_score": metrics_lib.inception_score(
          sample_logits)[0],
      "sample_class_accuracy_per_class": dict(zip(names,
                                                  accuracy_per_class)),
      "num_samples": num,
      "num_iter": decode.num_iter,
      "choice_temperature": decode.choice_temperature,
      "temperature": decode.temperature,
      "cfg_scale": decode.cfg_scale,
      "sampler": decode.sampler,
      "schedule": decode.schedule,
      "variant": variant,
      "seed": seed,
      "train_split": train_split,
      "wall_seconds": time.time() - start,
      "matmul_f32_gflops": matmul_rate,
      "stage_minutes": stages.minutes,
  }
  (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
  return result


def _resize(images: np.ndarray, size: int) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return np.stack([np.asarray(Image.fromarray(im).resize((size, size),
                                                         Image.BICUBIC))
                   for im in images])


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="demo_out")
  parser.add_argument("--variant", default="default", choices=VARIANTS)
  parser.add_argument("--seed", type=int, default=0,
                      help="shifts every training seed of the recipe (not "
                      "the judge's): training seeds of one recipe")
  parser.add_argument("--train_split", default="train", choices=TRAIN_SPLITS,
                      help="what the perceptual network, the tokenizer and "
                      "the transformer train on")
  parser.add_argument(
      "--cpu_devices", type=int, default=None,
      help="CPU devices to split the host into (default: twice the cores, "
      "as a power of two, at most 8); see sharding.split_host_cpu")

  def report(args):
    from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
    devices = sharding.split_host_cpu(args.cpu_devices)  # before JAX starts
    _log(f"running data-parallel over {devices} CPU devices (XLA_FLAGS "
         f"{sharding.CPU_DEVICES_FLAG}; a GPU or TPU is used instead when "
         "present)")
    result = run(pathlib.Path(args.out), args.variant, seed=args.seed,
                 train_split=args.train_split)
    _log(f"done in {result['wall_seconds'] / 60:.1f} min on a machine "
         f"measured at {result['matmul_f32_gflops']:.0f} GFLOP/s (float32 "
         f"matmul, one device); wrote {args.out}/"
         "{samples,inpaint,reconstructions}.png and metrics.json")
    for key in ("sample_class_accuracy", "classifier_fid", "real_fid_floor",
                "reconstruction_fid", "tokenizer_psnr", "codebook_usage",
                "classifier_test_accuracy"):
      print(f"  {key:26s} {result[key]:.4f}")

  return cli.run_args(report, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
