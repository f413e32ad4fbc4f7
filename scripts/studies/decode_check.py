"""Scores named decode settings of trained MaskGIT models on both judges: a
check of what the decode tuning's objective (the development distance on
validation) buys on the reporting judge (test).

    python -m scripts.studies.decode_check --base runs/base \\
        --models runs/base/maskgit,runs/ar_vs_maskgit/maskgit_lr0.001_1450_s0 \\
        --settings 'preset={}' 'tuned={"cfg_scale": 1.0, "num_iter": 64}' \\
        [--samples 1000] [--seeds 0,1] --out runs/decode_check

Every model x setting x sampling seed: ``--samples`` class-balanced
samples, the reporting judge's class accuracy and classifier FID against
test and the development judge's accuracy and distance against
validation. A setting is a JSON object of decode options over the model's
saved defaults (``preset={}``: the defaults). Writes ``OUT/results.json``
(resumable) and ``OUT/decode_check.md``: means over the sampling seeds with
their standard errors.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np


def parse_settings(items: list[str]) -> dict[str, dict]:
  """``NAME=JSON`` items -> ``{name: options}``; ValueError names a bad one."""
  settings = {}
  for item in items:
    name, sep, text = item.partition("=")
    try:
      options = json.loads(text) if sep else None
    except json.JSONDecodeError as e:
      raise ValueError(f"--settings {item!r}: {e}") from None
    if not name or not isinstance(options, dict):
      raise ValueError(f"--settings {item!r}: expected NAME={{JSON object}}")
    settings[name] = options
  return settings


def markdown(rows: list[dict]) -> str:
  """Per model and setting: the means over sampling seeds (± standard
  error) of both judges' numbers."""
  from maskgit_jax.evaluation import uncertainty  # pylint: disable=g-import-not-at-top
  cells: dict[tuple, list[dict]] = {}
  for row in rows:
    cells.setdefault((row["model"], row["setting"]), []).append(row)
  lines = ["| model | setting | seeds | test accuracy | test classifier FID "
           "| validation accuracy | validation distance | ms / image |",
           "|---|---|---|---|---|---|---|---|"]
  for (model, setting), group in cells.items():
    stats = [uncertainty.over_seeds([r[k] for r in group]).format(digits)
             for k, digits in (("accuracy", 3), ("fid", 1),
                               ("dev_accuracy", 3), ("dev_fd", 2))]
    ms = np.mean([r["ms_per_image"] for r in group])
    lines.append(f"| {model} | {setting} | {len(group)} | "
                 + " | ".join(stats) + f" | {ms:.0f} |")
  return "\n".join(lines) + "\n"


def run(args) -> int:
  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling
  from maskgit_jax.runtime import storage
  from scripts.studies import judges
  # pylint: enable=g-import-not-at-top
  settings = parse_settings(args.settings)
  models = [m for m in args.models.split(",") if m]
  seeds = [int(s) for s in args.seeds.split(",")]
  missing = [m for m in models if not storage.path(m).is_dir()]  # gs:// too
  if missing:
    raise ValueError(f"--models: no such workdir: {', '.join(missing)}")
  study = judges.Judges(pathlib.Path(args.base),
                        sampling.load(models[0]).image_size)
  results, save = judges.open_results(pathlib.Path(args.out))
  done = {(r["model"], r["setting"], r["seed"]) for r in results["rows"]}
  for model in models:
    gen = None
    for name, options in settings.items():
      for seed in seeds:
        if (model, name, seed) in done:
          continue
        gen = gen or sampling.load(model, batch_size=64)
        results["rows"].append(dict(
            model=model, setting=name, options=options, seed=seed,
            **study.score(gen, args.samples, seed=seed, **options)))
        print(json.dumps(results["rows"][-1]), flush=True)
        save()
  table = markdown(results["rows"])
  (pathlib.Path(args.out) / "decode_check.md").write_text(table)
  print(table)
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--base", required=True,
                      help="the base run whose judges score (judges.py)")
  parser.add_argument("--models", required=True,
                      help="comma-separated MaskGIT workdirs")
  parser.add_argument("--settings", nargs="+", required=True,
                      help="NAME=JSON decode options over the defaults")
  parser.add_argument("--samples", type=int, default=1000)
  parser.add_argument("--seeds", default="0")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  if args.samples < 10:
    parser.error(f"--samples must be >= 10 (one per class), got {args.samples}")
  try:
    return run(args)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
