"""Quality against minutes of ``make demo`` runs -> a two-panel plot.

    python -m scripts.studies.demo_efficiency_plot --runs docs/studies/demo_efficiency.json \
        --out docs/studies/demo_efficiency.png

``--runs`` is a JSON list of demo runs, each with ``label``, ``minutes``
(wall time, install and judge included; null: not a timing, left out of
the plot), ``sample_class_accuracy`` and
``classifier_fid`` as ``make demo`` writes them to ``metrics.json``. The
dashed lines mark the quality-per-minute goal (20 minutes, accuracy 0.88,
FID 35).
"""

from __future__ import annotations

import json
import pathlib
import sys

from maskgit_jax.runtime import cli

GOAL = dict(minutes=20.0, sample_class_accuracy=0.88, classifier_fid=35.0)


def plot(runs: list[dict], out: pathlib.Path) -> pathlib.Path:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, key, name in ((axes[0], "sample_class_accuracy", "class accuracy"),
                        (axes[1], "classifier_fid", "classifier FID")):
    for run in (r for r in runs if r["minutes"] is not None):
      ax.scatter(run["minutes"], run[key])
      ax.annotate(run["label"], (run["minutes"], run[key]), fontsize=7,
                  xytext=(3, 3), textcoords="offset points")
    ax.axvline(GOAL["minutes"], color="grey", linestyle="--", linewidth=0.8)
    ax.axhline(GOAL[key], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("make demo wall minutes (2 CPU cores)")
    ax.set_ylabel(name)
  axes[1].invert_yaxis()  # up is better in both panels
  fig.suptitle("make demo: quality against minutes")
  fig.tight_layout()
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out


def main(argv=None) -> int:
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", default="docs/studies/demo_efficiency.json")
  parser.add_argument("--out", default="docs/studies/demo_efficiency.png")

  def run(args):
    runs = json.loads(pathlib.Path(args.runs).read_text())
    for run_ in runs:
      missing = {"label", *GOAL} - set(run_)
      if missing:
        raise ValueError(f"run {run_.get('label', run_)!r} lacks "
                         f"{sorted(missing)}")
    print(f"wrote {plot(runs, pathlib.Path(args.out))}")

  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
