"""The paper's headline at small scale: MaskGIT against the autoregressive prior.

    python -m scripts.studies.ar_vs_maskgit --run demo_out --out runs/ar_vs_maskgit \
        [--budgets 725,1450] [--seeds 0,1,2] [--samples 1000] [--tune_seed 100]

On one finished ``make demo`` (its tokenizer, cached tokens, judge and
perceptual network), for every budget ``B`` (training steps at batch 64):

1. trains MaskGIT (``maskgit_animal_mnist``) and the autoregressive
   prior (``ar_animal_mnist``: the same width, depth, batch, optimizer and
   tokens, causal) for ``B`` steps each, timing both (resumable: a finished
   workdir is kept);
2. picks each model's sampling settings on a held-out seed with the
   *development judge* (the run's perceptual network, a classifier of the
   train split; never the demo's judge): MaskGIT at T = 8 and 16 over
   guidance and temperature, the prior over guidance, temperature and
   top-k;
3. scores the picked settings with the demo's judge: ``--samples``
   class-balanced samples for each of ``--seeds`` (class accuracy,
   classifier FID; mean and std over seeds);
4. times the decode (tokens to pixels included) per image at batch 1 and 64;
5. writes ``OUT/results.json``, ``OUT/ar_vs_maskgit.md`` (the table) and
   ``OUT/samples.png`` (one row per class: MaskGIT T=8, then the prior).

Steps 3-4 want an otherwise idle machine (``--skip_timing`` leaves 4 out).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import time

import numpy as np

from maskgit_jax.runtime import sharding

MASKGIT_GRID = [dict(cfg_scale=w, temperature=t)
                for w, t in itertools.product((2.0, 4.0, 6.0), (0.8, 1.0))]
PRIOR_GRID = [dict(cfg_scale=w, temperature=t, top_k=k)
              for w, (t, k) in itertools.product(
                  (0.0, 1.0, 2.0, 4.0), ((1.0, 0), (1.0, 32), (0.8, 0)))]
TUNE_SAMPLES = 500


def _train(kind: str, steps: int, run: pathlib.Path, workdir: pathlib.Path
           ) -> float:
  """Trains ``kind`` ("maskgit" or "ar") for ``steps``; returns minutes
  (read back from ``minutes.json`` when the workdir is already finished)."""
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import ar_animal_mnist
  from maskgit_jax.presets import maskgit_animal_mnist
  from maskgit_jax.trainers import loop
  # pylint: enable=g-import-not-at-top
  record = workdir / "minutes.json"
  if record.exists():
    return json.loads(record.read_text())["minutes"]
  preset = ar_animal_mnist if kind == "ar" else maskgit_animal_mnist
  config = preset.get_config("default")
  config.tokenizer_checkpoint = str(run / "tokenizer")
  config.data.name = f"tokens:{run / 'tokens_train.npz'}"
  config.update(num_train_steps=steps, checkpoint_every_steps=steps,
                preview_every_steps=steps)
  start = time.time()
  loop.train_and_evaluate(config, workdir)
  minutes = (time.time() - start) / 60
  record.write_text(json.dumps({"minutes": minutes, "steps": steps}))
  return minutes


def _scores(gen, judge, reference, labels, seed, options) -> tuple:
  from maskgit_jax.evaluation import metrics  # pylint: disable=g-import-not-at-top
  images = gen.generate(labels, seed=seed, **options)
  logits, pool = judge(images)
  return metrics.class_scores(logits, pool, labels, reference)


def _pick(gen, grid, dev, dev_ref, seed) -> tuple[dict, list[dict]]:
  """The grid point with the lowest development FD (``TUNE_SAMPLES``)."""
  labels = np.arange(TUNE_SAMPLES) % 10
  tried = []
  for options in grid:
    accuracy, fd = _scores(gen, dev, dev_ref, labels, seed, options)
    tried.append(dict(options, dev_accuracy=accuracy, dev_fd=fd))
    print(json.dumps(tried[-1]), flush=True)
  best = min(tried, key=lambda r: r["dev_fd"])
  return {k: best[k] for k in grid[0]}, tried


def _ms_per_image(gen, count: int, options, repeats: int = 3) -> float:
  """Median wall ms per image of ``count`` images (``gen``'s batch size)."""
  labels = np.arange(count) % 10
  gen.generate(labels, seed=0, **options)  # compile
  times = []
  for r in range(repeats):
    start = time.perf_counter()
    gen.generate(labels, seed=r + 1, **options)
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times)) / count


def markdown(rows: list[dict]) -> str:
  lines = ["| budget (steps) | model | training minutes | settings (picked "
           "on the development judge) | class accuracy | classifier FID | "
           "ms / image, batch 1 | ms / image, batch 64 |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
    lines.append(
        f"| {r['budget']} | {r['model']} | {r['minutes']:.1f} | {settings} | "
        f"{r['accuracy']:.3f} +- {r['accuracy_std']:.3f} | "
        f"{r['fid']:.2f} +- {r['fid_std']:.2f} | "
        f"{r.get('ms_batch1', float('nan')):.1f} | "
        f"{r.get('ms_batch64', float('nan')):.2f} |")
  return "\n".join(lines) + "\n"


def _grid_picture(gens, out: pathlib.Path) -> None:
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  rows = []
  for gen, options in gens:
    images = gen.generate(np.repeat(np.arange(10), 6), seed=7, **options)
    rows.append(images.reshape(10, 6, *images.shape[1:]))
  both = np.concatenate(rows, axis=1).reshape(-1, *rows[0].shape[2:])
  imageio.write_image(out, imageio.image_grid(both, 6 * len(gens)))


def run(args) -> int:
  # pylint: disable=g-import-not-at-top
  import jax
  from scripts.studies.demo_levers import DevJudge
  from maskgit_jax.data import input_pipeline
  from maskgit_jax import sampling
  from maskgit_jax.evaluation import classifier as classifier_lib
  from maskgit_jax.evaluation import metrics
  # pylint: enable=g-import-not-at-top
  run_dir, out = pathlib.Path(args.run), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  images, _ = input_pipeline.load_animal_mnist()
  test = images[input_pipeline.animal_mnist_split("test")]
  demo_judge = classifier_lib.Classifier.load(run_dir / "classifier.npz")

  def judge(x):
    judged = demo_judge.outputs(x)
    return judged["logits"], judged["pool"]
  dev = DevJudge(run_dir / "perceptual.npz").outputs
  ref = metrics.Statistics.of(judge(test)[1])
  dev_ref = metrics.Statistics.of(dev(test)[1])
  results_path = out / "results.json"
  results = json.loads(results_path.read_text()) if results_path.exists() \
      else {"rows": [], "tuning": {}}
  done = {(r["budget"], r["model"]) for r in results["rows"]}
  seeds = [int(s) for s in args.seeds.split(",")]
  labels = np.arange(args.samples) % 10
  for budget in (int(b) for b in args.budgets.split(",")):
    for kind in ("maskgit", "ar"):
      workdir = out / f"{kind}_{budget}"
      minutes = _train(kind, budget, run_dir, workdir)
      gen = sampling.load(workdir, batch_size=64)
      variants = ([(f"MaskGIT T={t}", dict(num_iter=t)) for t in (8, 16)]
                  if kind == "maskgit" else [("autoregressive", {})])
      for name, fixed in variants:
        if (budget, name) in done:
          continue
        grid = [dict(g, **fixed) for g in
                (MASKGIT_GRID if kind == "maskgit" else PRIOR_GRID)]
        settings, tried = _pick(gen, grid, dev, dev_ref, args.tune_seed)
        results["tuning"][f"{budget} {name}"] = tried
        cells = [_scores(gen, judge, ref, labels, s, settings) for s in seeds]
        acc, fid = (np.array(c) for c in zip(*cells))
        row = dict(budget=budget, model=name, minutes=minutes,
                   settings=settings, seeds=seeds, samples=args.samples,
                   accuracy=float(acc.mean()),
                   accuracy_std=float(acc.std(ddof=1)),
                   fid=float(fid.mean()), fid_std=float(fid.std(ddof=1)),
                   per_seed=[dict(seed=s, accuracy=float(a), fid=float(f))
                             for s, a, f in zip(seeds, acc, fid)])
        if not args.skip_timing:
          for batch in (1, 64):  # batch 1 on one device: 8 images in turn
            timed = sampling.load(
                workdir, batch_size=batch,
                devices=jax.local_devices()[:1] if batch == 1 else None)
            row[f"ms_batch{batch}"] = _ms_per_image(
                timed, 8 if batch == 1 else batch, settings)
        print(json.dumps(row), flush=True)
        results["rows"].append(row)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
  (out / "ar_vs_maskgit.md").write_text(markdown(results["rows"]))
  last = max(int(b) for b in args.budgets.split(","))
  picked = {r["model"]: r["settings"] for r in results["rows"]
            if r["budget"] == last}
  _grid_picture(
      [(sampling.load(out / f"maskgit_{last}"),
        picked["MaskGIT T=8"]),
       (sampling.load(out / f"ar_{last}"),
        picked["autoregressive"])], out / "samples.png")
  print(markdown(results["rows"]))
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="a finished make demo")
  parser.add_argument("--out", required=True)
  parser.add_argument("--budgets", default="725,1450")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--samples", type=int, default=1000)
  parser.add_argument("--tune_seed", type=int, default=100)
  parser.add_argument("--skip_timing", action="store_true")
  args = parser.parse_args(argv)
  run_dir = pathlib.Path(args.run)
  for name in ("tokenizer", "tokens_train.npz", "classifier.npz",
               "perceptual.npz"):
    if not (run_dir / name).exists():
      parser.error(f"--run {run_dir} has no {name}: a finished make demo "
                   "is needed")
  sharding.split_host_cpu()  # as make demo trains; before JAX starts
  return run(args)


if __name__ == "__main__":
  sys.exit(main())
