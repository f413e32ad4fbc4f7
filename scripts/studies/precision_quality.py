"""Does bfloat16 decoding change sample quality? The demo model, scored by
the demo's judge, in each inference precision over several seeds.

    python -m scripts.studies.precision_quality --run demo_out --out runs/precision \
        [--samples 2000] [--seeds 0,1,2]

For each precision (``float32``, ``bfloat16``, ``bfloat16_matmul``) and
seed: ``--samples`` class-balanced samples with the model's default decode
options; class accuracy and classifier FID against the test split's judge
features (as ``make demo`` computes them), and the wall time of the
sampling. Nothing is tuned here: the judge only scores. Writes
``OUT/precision_quality.json`` and prints a mean +- std table.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from maskgit_jax.runtime import sharding


def _score(gen, judge, labels, seed, ref_stats):
  from maskgit_jax.evaluation import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  images = gen.generate(labels, seed=seed)
  seconds = time.perf_counter() - start
  judged = judge.outputs(images)
  accuracy, fid = metrics_lib.class_scores(judged["logits"], judged["pool"],
                                           labels, ref_stats)
  return {"accuracy": accuracy, "fid": fid, "seconds": seconds}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="a finished make demo")
  parser.add_argument("--out", required=True)
  parser.add_argument("--samples", type=int, default=2000)
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--precisions",
                      default="float32,bfloat16,bfloat16_matmul")
  args = parser.parse_args(argv)
  sharding.split_host_cpu()  # as make demo samples; before JAX starts
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import input_pipeline
  from maskgit_jax import sampling
  from maskgit_jax.evaluation import classifier as classifier_lib
  from maskgit_jax.evaluation import metrics as metrics_lib
  # pylint: enable=g-import-not-at-top
  run = pathlib.Path(args.run)
  judge = classifier_lib.Classifier.load(run / "classifier.npz")
  images, _ = input_pipeline.load_animal_mnist()
  test = images[input_pipeline.animal_mnist_split("test")]
  ref_stats = metrics_lib.Statistics.of(judge.features(test))
  labels = np.arange(args.samples) % 10
  rows = []
  for precision in args.precisions.split(","):
    gen = sampling.Generator.from_checkpoint(run / "maskgit", batch_size=64,
                                             precision=precision)
    gen.generate(labels[:64], seed=99)  # compile outside the timing
    for seed in (int(s) for s in args.seeds.split(",")):
      row = dict(precision=precision, seed=seed, samples=args.samples,
                 **_score(gen, judge, labels, seed, ref_stats))
      print(json.dumps(row), flush=True)
      rows.append(row)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "precision_quality.json").write_text(json.dumps(rows, indent=2))
  print("precision | accuracy | classifier FID | seconds")
  for precision in args.precisions.split(","):
    got = [r for r in rows if r["precision"] == precision]
    cell = lambda k: (f"{np.mean([r[k] for r in got]):.3f} +- "
                      f"{np.std([r[k] for r in got], ddof=1):.3f}")
    print(f"{precision} | {cell('accuracy')} | {cell('fid')} | "
          f"{cell('seconds')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
