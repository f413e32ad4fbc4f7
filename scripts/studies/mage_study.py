"""MAGE on animal-MNIST: the ratio ablation, the linear probe, samples.

    python -m scripts.studies.mage_study --run runs/base --out runs/mage_study \
        [--ratios truncnorm,uniform,fixed] [--seeds 0,1,2] [--samples 1000]

On one base run (``scripts/studies/judges.py``: a finished demo trained
without the validation split; its tokenizer, cached tokens, transformer,
judge and perceptual network):

1. trains MAGE (``configs/mage_animal_mnist.py``, the demo's budget) for
   every mask-ratio distribution and training seed, each with ``train.py``
   in a subprocess (resumable: a workdir with ``minutes.json`` is kept);
2. picks the generation's choice temperature with the *development judge*
   against the validation split (never the reporting judge or test) on the
   first distribution's first seed: the lowest Frechet distance of 500
   samples;
3. for every run: ``--samples`` unconditional samples scored by the demo
   judge (classifier FID against the test split; the judge's class
   histogram of the samples) and the linear probe of its encoder features
   (train split -> test accuracy; :mod:`maskgit_jax.evaluation.probe`);
4. the same probe on raw pixels, the tokenizer's latents and the demo
   MaskGIT transformer's hidden states (null class token);
5. writes ``OUT/results.json`` and ``OUT/mage.md`` (tables); every run's
   workdir keeps ``samples.png`` (its first 80 samples), ``samples.json``
   and ``probe.json``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
CHOICE_TEMPERATURES = (1.0, 2.0, 4.5, 6.0)
TUNE_SAMPLES, TUNE_SEED = 500, 100


def _train(run: pathlib.Path, ratio: str, seed: int, workdir: pathlib.Path
           ) -> float:
  """Trains one MAGE run with train.py; returns minutes (kept on disk)."""
  record = workdir / "minutes.json"
  if record.exists():
    return json.loads(record.read_text())["minutes"]
  start = time.time()
  subprocess.run(
      [sys.executable, str(REPO / "train.py"),
       f"--config={REPO / 'configs/mage_animal_mnist.py'}",
       f"--config.tokenizer_checkpoint={run / 'tokenizer'}",
       f"--config.data.name=tokens:{run / 'tokens_train.npz'}",
       f"--config.mage.ratio={ratio}", f"--config.seed={seed}",
       f"--workdir={workdir}", "--cpu_devices=4"], check=True)
  minutes = (time.time() - start) / 60
  record.write_text(json.dumps({"minutes": minutes}))
  return minutes


def _probe(kind: str, checkpoint, out: pathlib.Path) -> float:
  """Test accuracy of the probe on ``kind`` features (cached in ``out``)."""
  if not out.exists():
    command = [sys.executable, "-m", "maskgit_jax.evaluation.probe",
               f"--features={kind}", f"--output_json={out}"]
    if checkpoint is not None:
      command.append(f"--checkpoint={checkpoint}")
    subprocess.run(command, check=True, cwd=REPO)
  return json.loads(out.read_text())["test_accuracy"]


def _histogram(logits: np.ndarray, classes: int = 10) -> list[int]:
  return np.bincount(np.asarray(logits).argmax(-1), minlength=classes
                     ).tolist()


def markdown(results: dict) -> str:
  lines = ["| mask ratio | training seeds | classifier FID | probe accuracy "
           "| largest / smallest class share |",
           "|---|---|---|---|---|"]
  for ratio, rows in results["by_ratio"].items():
    fid = np.array([r["fid"] for r in rows])
    acc = np.array([r["probe_accuracy"] for r in rows])
    shares = [max(r["histogram"]) / max(min(r["histogram"]), 1)
              for r in rows]
    lines.append(f"| {ratio} | {len(rows)} | {fid.mean():.2f} +- "
                 f"{fid.std(ddof=1) if len(rows) > 1 else 0:.2f} | "
                 f"{acc.mean():.3f} +- "
                 f"{acc.std(ddof=1) if len(rows) > 1 else 0:.3f} | "
                 f"{np.mean(shares):.2f} |")
  lines += ["", "| features | probe test accuracy |", "|---|---|"]
  for name, value in results["baselines"].items():
    lines.append(f"| {name} | {value:.3f} |")
  return "\n".join(lines) + "\n"


def run(args) -> int:
  # pylint: disable=g-import-not-at-top
  from scripts.studies import judges
  from maskgit_jax.data import imageio
  from maskgit_jax import sampling
  from maskgit_jax.evaluation import metrics
  # pylint: enable=g-import-not-at-top
  run_dir, out = pathlib.Path(args.run), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  study = judges.Judges(run_dir)
  judge, reference = study.judge, study.reference
  ratios = args.ratios.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  workdirs = {(r, s): out / f"{r}_s{s}" for r in ratios for s in seeds}
  minutes = {key: _train(run_dir, *key, wd) for key, wd in workdirs.items()}

  results_path = out / "results.json"
  results = (json.loads(results_path.read_text()) if results_path.exists()
             else {})
  if "tuning" not in results:
    gen = sampling.Generator.from_checkpoint(workdirs[ratios[0], seeds[0]])
    tried = []
    for temperature in CHOICE_TEMPERATURES:
      samples = gen.generate(np.zeros(TUNE_SAMPLES, np.int32), seed=TUNE_SEED,
                             choice_temperature=temperature)
      fd = metrics.frechet_distance(
          metrics.Statistics.of(study.dev.features(samples)),
          study.dev_reference)
      tried.append(dict(choice_temperature=temperature, dev_fd=float(fd)))
      print(json.dumps(tried[-1]), flush=True)
    results["tuning"] = tried
  picked = min(results["tuning"], key=lambda r: r["dev_fd"])
  options = dict(choice_temperature=picked["choice_temperature"])

  results["by_ratio"] = {}
  for (ratio, seed), workdir in workdirs.items():
    scores = workdir / "samples.json"  # kept: a rerun only adds runs
    if not scores.exists() or json.loads(scores.read_text())["key"] != [
        options, args.samples]:
      gen = sampling.Generator.from_checkpoint(workdir)
      samples = gen.generate(np.zeros(args.samples, np.int32), seed=0,
                             **options)
      judged = judge.outputs(samples)
      fid = metrics.frechet_distance(metrics.Statistics.of(judged["pool"]),
                                     reference)
      imageio.write_image(workdir / "samples.png",
                          imageio.image_grid(samples[:80], 10))
      scores.write_text(json.dumps(dict(
          key=[options, args.samples], fid=float(fid),
          histogram=_histogram(judged["logits"]))))
    scored = json.loads(scores.read_text())
    row = dict(seed=seed, minutes=minutes[ratio, seed], fid=scored["fid"],
               histogram=scored["histogram"],
               probe_accuracy=_probe("mage", workdir, workdir / "probe.json"))
    print(json.dumps(dict(row, ratio=ratio)), flush=True)
    results["by_ratio"].setdefault(ratio, []).append(row)
  results["baselines"] = {
      "raw pixels": _probe("pixels", None, out / "probe_pixels.json"),
      "tokenizer latents": _probe("tokenizer", run_dir / "tokenizer",
                                  out / "probe_tokenizer.json"),
      "MaskGIT hidden states": _probe("maskgit", run_dir / "maskgit",
                                      out / "probe_maskgit.json"),
  }
  results.update(options=options, samples=args.samples, seeds=seeds)
  results_path.write_text(json.dumps(results, indent=1) + "\n")
  (out / "mage.md").write_text(markdown(results))
  print(markdown(results))
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="a finished make demo")
  parser.add_argument("--out", required=True)
  parser.add_argument("--ratios", default="truncnorm,uniform,fixed")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--samples", type=int, default=1000)
  args = parser.parse_args(argv)
  run_dir = pathlib.Path(args.run)
  for name in ("tokenizer", "maskgit", "tokens_train.npz", "classifier.npz",
               "perceptual.npz"):
    if not (run_dir / name).exists():
      parser.error(f"--run {run_dir} has no {name}: a finished make demo "
                   "is needed")
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  sharding.split_host_cpu()  # as make demo samples; before JAX starts
  return run(args)


if __name__ == "__main__":
  sys.exit(main())
