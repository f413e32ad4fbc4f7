"""The samplers side by side on one trained model, with seed error bars.

    python -m scripts.studies.sampler_study --run runs/base --out runs/samplers \
        [--critic runs/critic] [--steps 4,8,16,32] [--seeds 0,1,2] \
        [--samples 1000] [--samplers confidence,halton,random,mdlm,remdm,critic]
    python -m scripts.studies.sampler_study ... --timing_only   # re-time, idle machine

``--run`` is a base run (``scripts/studies/judges.py``: the demo trained
without the validation split). For every sampler, T and seed:
``--samples`` class-balanced samples with the model's other decode defaults
(guidance, temperatures); class accuracy and classifier FID against the
test split in the reporting judge (as ``make demo`` scores), the same two
from the *development judge* against the validation split (what a default
may be chosen on), and the decode time per image. Rows go to ``OUT/samplers.jsonl``
as they finish (a re-run skips done rows); ``OUT/samplers.md`` gets the mean
+- std table and ``OUT/samplers.png`` FID and accuracy against T. The demo's
judge only scores here: nothing is fitted or chosen on it. ``--timing_only``
re-times every (sampler, T) in interleaved rounds (128 samples, median of 3)
into ``OUT/timing.json``, which then replaces the rows' times in the table
(the rows' own times are only as clean as the machine was during the run).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from maskgit_jax.runtime import sharding

# name -> DecodeOptions overrides (the model's defaults for everything else).
SAMPLERS = {
    "confidence": {},
    "halton": dict(order="halton", schedule="arccos", roll_order=True),
    "random": dict(order="random"),
    "mdlm": dict(order="mdlm"),
    "remdm": dict(order="mdlm", remask="cap", remask_eta=0.05),
    "critic": dict(order="critic"),
}


def _rows(path: pathlib.Path) -> list[dict]:
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line]


def summarize(rows: list[dict]) -> list[dict]:
  """Mean and sample std per (sampler, T) over seeds."""
  out = []
  keys = dict.fromkeys((r["sampler"], r["T"]) for r in rows)
  for sampler, t in keys:
    cell = [r for r in rows if r["sampler"] == sampler and r["T"] == t]
    entry = dict(sampler=sampler, T=t, seeds=len(cell))
    for k in ("accuracy", "fid", "dev_accuracy", "dev_fd", "ms_per_image"):
      values = np.array([r.get(k, np.nan) for r in cell])
      entry[k] = float(values.mean())
      entry[k + "_std"] = float(values.std(ddof=1)) if len(cell) > 1 else 0.0
    out.append(entry)
  return out


def markdown(summary: list[dict]) -> str:
  lines = ["| sampler | T | seeds | class accuracy | classifier FID | "
           "dev accuracy | dev FD | ms / image |",
           "|---|---|---|---|---|---|---|---|"]
  for s in sorted(summary, key=lambda s: (s["T"], s["sampler"])):
    lines.append(f"| {s['sampler']} | {s['T']} | {s['seeds']} | "
                 f"{s['accuracy']:.3f} +- {s['accuracy_std']:.3f} | "
                 f"{s['fid']:.2f} +- {s['fid_std']:.2f} | "
                 f"{s['dev_accuracy']:.3f} +- {s['dev_accuracy_std']:.3f} | "
                 f"{s['dev_fd']:.2f} +- {s['dev_fd_std']:.2f} | "
                 f"{s['ms_per_image']:.1f} |")
  return "\n".join(lines) + "\n"


def plot(summary: list[dict], out: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for name in dict.fromkeys(s["sampler"] for s in summary):
    cells = sorted((s for s in summary if s["sampler"] == name),
                   key=lambda s: s["T"])
    ts = [s["T"] for s in cells]
    for ax, key in ((axes[0], "fid"), (axes[1], "accuracy")):
      ax.errorbar(ts, [s[key] for s in cells],
                  yerr=[s[key + "_std"] for s in cells], label=name,
                  marker="o", capsize=3)
  for ax, name in ((axes[0], "classifier FID"), (axes[1], "class accuracy")):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("decode steps T")
    ax.set_ylabel(name)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out, dpi=120)


def retime(gen, names: list[str], steps: list[int], count: int = 128,
           rounds: int = 3) -> dict[str, float]:
  """Median ms per image of every ``sampler/T`` over interleaved rounds."""
  labels = np.arange(count) % 10
  times: dict[str, list[float]] = {}
  for t in steps:
    for name in names:  # compile, untimed
      gen.generate(labels[:64], seed=99, **dict(SAMPLERS[name], num_iter=t))
    for r in range(rounds):
      for name in names:
        start = time.perf_counter()
        gen.generate(labels, seed=r, **dict(SAMPLERS[name], num_iter=t))
        times.setdefault(f"{name}/{t}", []).append(
            1e3 * (time.perf_counter() - start) / count)
  return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="a finished make demo")
  parser.add_argument("--out", required=True)
  parser.add_argument("--critic", default=None, help="a critic workdir")
  parser.add_argument("--steps", default="4,8,16,32")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--samples", type=int, default=1000)
  parser.add_argument("--samplers", default=",".join(SAMPLERS))
  parser.add_argument("--timing_only", action="store_true")
  args = parser.parse_args(argv)
  names = [n for n in args.samplers.split(",") if n]
  unknown = sorted(set(names) - set(SAMPLERS))
  if unknown:
    parser.error(f"unknown sampler(s) {unknown}; expected {list(SAMPLERS)}")
  if "critic" in names and not args.critic:
    parser.error("the critic sampler needs --critic WORKDIR")
  sharding.split_host_cpu()  # as make demo samples; before JAX starts
  # pylint: disable=g-import-not-at-top
  from scripts.studies import judges
  from maskgit_jax import sampling
  # pylint: enable=g-import-not-at-top
  run, out = pathlib.Path(args.run), pathlib.Path(args.out)
  study = judges.Judges(run)
  out.mkdir(parents=True, exist_ok=True)
  gen = sampling.Generator.from_checkpoint(run / "maskgit", batch_size=64,
                                           critic=args.critic)
  steps = [int(s) for s in args.steps.split(",")]
  if args.timing_only:
    timing = retime(gen, names, steps)
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
  labels = np.arange(args.samples) % 10
  path = out / "samplers.jsonl"
  done = {(r["sampler"], r["T"], r["seed"]) for r in _rows(path)}
  for t in ([] if args.timing_only else steps):
    for name in names:
      options = dict(SAMPLERS[name], num_iter=t)
      gen.generate(labels[:64], seed=99, **options)  # compile, untimed
      for seed in (int(s) for s in args.seeds.split(",")):
        if (name, t, seed) in done:
          continue
        start = time.perf_counter()
        samples = gen.generate(labels, seed=seed, **options)
        seconds = time.perf_counter() - start
        accuracy, fid = study.report(samples, labels)
        dev_accuracy, dev_fd = study.develop(samples, labels)
        row = dict(sampler=name, T=t, seed=seed, samples=args.samples,
                   accuracy=accuracy, fid=fid, dev_accuracy=dev_accuracy,
                   dev_fd=dev_fd,
                   ms_per_image=1e3 * seconds / args.samples)
        print(json.dumps(row), flush=True)
        with path.open("a") as f:
          f.write(json.dumps(row) + "\n")
  summary = summarize(_rows(path))
  if (out / "timing.json").exists():
    timing = json.loads((out / "timing.json").read_text())
    for entry in summary:
      key = f"{entry['sampler']}/{entry['T']}"
      if key in timing:
        entry["ms_per_image"], entry["ms_per_image_std"] = timing[key], 0.0
  (out / "samplers.json").write_text(json.dumps(summary, indent=2) + "\n")
  (out / "samplers.md").write_text(markdown(summary))
  plot(summary, out / "samplers.png")
  print(markdown(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
