"""Stage-2 levers of the demo, screened on the validation split.

    python -m scripts.studies.demo_levers --base runs/base --out runs/levers \
        --levers baseline,lr2e-3 --seeds 0,1 --steps 1000 \
        [--set optimizer.learning_rate=1e-3]

``BASE`` is a base run (``scripts/studies/judges.py``: the demo trained
without the validation split). Each lever is the demo transformer
(``maskgit_jax/presets/maskgit_animal_mnist.py``) with some config fields
changed, trained on ``BASE/tokens_train.npz``. A lever that changes the
step's cost trains for ``steps * base_cost / its_cost`` steps: equal
minutes. Per run it reports, with the EMA params:

- the held-out masked-token cross-entropy (no label smoothing) on the
  validation split's tokens, at masks drawn once with the cosine schedule
  (whatever mask ratios the lever trains with);
- class accuracy and Frechet distance of 1,000 class-balanced samples in the
  *development judge* against the validation split. The reporting judge
  and the test split are never used here.

Results: ``OUT/levers.json`` (one row per run; re-running skips done runs).
``--decode_sweep WORKDIR`` instead scores decode options (guidance,
temperatures, T, schedule) one at a time on a trained model, with the same
development judge: ``OUT/decode_sweep.json``. ``--checkpoints WORKDIR``
scores each saved step of a trained model: ``OUT/checkpoints.json``.
"""

from __future__ import annotations

import ast
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.evaluation import uncertainty
from maskgit_jax.runtime import cli
from maskgit_jax.objectives import mvtm
from maskgit_jax.tools import pretokenize
from maskgit_jax.runtime import restore
from maskgit_jax import sampling
from maskgit_jax.runtime import sharding
from maskgit_jax.presets import maskgit_animal_mnist
from maskgit_jax.presets import common
from maskgit_jax.trainers import loop
from scripts.studies import judges
from scripts.studies import tokenizer_study  # its step-cost measurement

LEVERS = {
    "baseline": {},
    "lr1e-3": {"optimizer.learning_rate": 1e-3},
    "lr2e-3": {"optimizer.learning_rate": 2e-3},
    "lr3e-3": {"optimizer.learning_rate": 3e-3},
    "no_label_smoothing": {"masking.label_smoothing": 0.0},
    "batch32": {"batch_size": 32},
    "batch128": {"batch_size": 128},
    "ema0.99": {"ema_decay": 0.99},
    "warmup50": {"optimizer.warmup_steps": 50},
    "wd0.045": {"optimizer.weight_decay": 0.045},
    "b2_0.99": {"optimizer.b2": 0.99},
    "arccos_masks": {"masking.schedule": "arccos"},
    "dropout0.1": {"model.dropout_rate": 0.1,
                   "model.attention_dropout_rate": 0.1},
    "depth6_width96": {"model.num_layers": 6, "model.hidden_size": 96,
                       "model.mlp_dim": 384, "model.num_heads": 4},
    # The literature's masked-model levers (issue 28).
    "mask_ratio_mar": {"masking.mask_ratio": "mar"},
    "mask_ratio_emigm": {"masking.mask_ratio": "emigm"},
    "loss_on_all": {"masking.loss_on": "all"},
    "pre_ln": {"model.norm": "pre"},
    "pre_ln_no_smoothing": {"model.norm": "pre",
                            "masking.label_smoothing": 0.0},
}
NUM_SAMPLES = 1000
COST_FIELDS = ("batch_size", "model.")  # overrides that change a step's cost
HELD_OUT = "validation"  # the held-out loss' split


def lever_config(base: pathlib.Path, overrides: dict, steps: int, seed: int):
  config = maskgit_animal_mnist.get_config("default")
  config.tokenizer_checkpoint = str(base / "tokenizer")
  config.data.name = f"tokens:{base / 'tokens_train.npz'}"
  config.seed = seed
  common.override(config, overrides)
  config.update(num_train_steps=steps, checkpoint_every_steps=steps,
                preview_every_steps=0, log_every_steps=max(steps // 5, 1))
  return config


def step_cost(config, repeats: int = 10) -> float:
  """Seconds per train step of ``config`` (compiled first)."""
  b = config.batch_size
  batch = {"tokens": jnp.zeros((b, 8, 8), jnp.int32),
           "labels": jnp.arange(b) % 10}
  return tokenizer_study.seconds_per_step(config, batch, repeats)


def heldout_loss(workdir: pathlib.Path, tokens: np.ndarray,
                 labels: np.ndarray) -> float:
  """Masked-token cross-entropy of the EMA params on held-out tokens."""
  saved = restore.load_transformer(workdir, use_ema=True)
  model, layout = saved.model, saved.model.layout
  tokens = jnp.asarray(tokens.reshape(len(tokens), -1))
  mask = mvtm.sample_mask(jax.random.PRNGKey(123), *tokens.shape)
  inputs = layout.make_sequence(jnp.asarray(labels), tokens, mask=mask)
  targets = layout.make_sequence(jnp.asarray(labels), tokens)
  loss_mask = jnp.concatenate([jnp.zeros((len(tokens), 1), bool), mask], 1)

  @jax.jit
  def loss(params, x, t, m):
    logits = model.apply({"params": params}, x)
    return mvtm.mvtm_loss(logits=logits, targets=t, mask=m,
                             label_smoothing=0.0)[0]
  parts = [float(loss(saved.params, inputs[i:i + 500], targets[i:i + 500],
                      loss_mask[i:i + 500])) for i in range(0, len(tokens), 500)]
  return float(np.mean(parts))


def sample_scores(workdir: pathlib.Path, study: judges.Judges,
                  step: int | None = None, **options) -> dict:
  """The development judge's scores of 1,000 class-balanced samples."""
  gen = sampling.Generator.from_checkpoint(workdir, batch_size=64, step=step)
  labels = np.arange(NUM_SAMPLES) % 10
  accuracy, fid = study.develop(gen.generate(labels, seed=3, **options),
                                labels)
  return {"dev_accuracy": accuracy, "dev_fid": fid}


DECODE_SWEEP = (
    dict(), dict(cfg_scale=2.0), dict(cfg_scale=3.0), dict(cfg_scale=6.0),
    dict(temperature=1.0), dict(temperature=0.6), dict(choice_temperature=2.0),
    dict(choice_temperature=8.0), dict(num_iter=12), dict(num_iter=6),
    dict(schedule="arccos"))


def decode_sweep(workdir: pathlib.Path, study: judges.Judges,
                 out: pathlib.Path) -> None:
  """Decode options one at a time around the config's defaults."""
  rows = []
  for options in DECODE_SWEEP:
    row = dict(options=options, **sample_scores(workdir, study, **options))
    print(json.dumps(row), flush=True)
    rows.append(row)
  (out / "decode_sweep.json").write_text(json.dumps(rows, indent=1) + "\n")


def checkpoint_scores(workdir: pathlib.Path, study: judges.Judges,
                      out: pathlib.Path) -> None:
  """Every saved step of a stage-2 workdir, scored by the development judge
  (how much a shorter run could lose: an early checkpoint's learning rate
  has not decayed yet, so it bounds a shorter run from below)."""
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()
                 if p.name.isdigit())
  rows = []
  for step in steps:
    row = dict(step=step, **sample_scores(workdir, study, step))
    print(json.dumps(row), flush=True)
    rows.append(row)
  (out / "checkpoints.json").write_text(json.dumps(rows, indent=1) + "\n")


def parse_settings(settings: list[str]) -> dict:
  """``["a.b=1e-3", ...]`` -> ``{"a.b": 0.001}`` (values as Python literals)."""
  parsed = {}
  for item in settings:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise ValueError(f"--set takes key=value, got {item!r}")
    try:
      parsed[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      parsed[key] = value  # a plain string, e.g. a schedule name
  return parsed


def markdown(rows: list[dict]) -> str:
  """One line per lever: the mean over training seeds ± its standard error
  (``maskgit_jax.evaluation.uncertainty``; accuracy floored at the binomial
  noise of ``NUM_SAMPLES`` samples per seed)."""
  lines = ["| lever | seeds | steps | held-out loss | dev accuracy | dev FD |",
           "|---|---|---|---|---|---|"]
  for name in dict.fromkeys(r["lever"] for r in rows):
    runs = [r for r in rows if r["lever"] == name]
    values = lambda key, runs=runs: [r[key] for r in runs]  # pylint: disable=unnecessary-lambda-assignment
    accuracy = uncertainty.accuracy_over_seeds(values("dev_accuracy"),
                                               NUM_SAMPLES)
    lines.append(
        f"| {name} | {len(runs)} | {runs[0]['steps']} | "
        f"{uncertainty.over_seeds(values('heldout_loss')).format(3)} | "
        f"{accuracy.format(3)} | "
        f"{uncertainty.over_seeds(values('dev_fid')).format(2)} |")
  return "\n".join(lines)


def run(args) -> int:
  base, out = pathlib.Path(args.base), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  results_path = out / "levers.json"
  rows = json.loads(results_path.read_text()) if results_path.exists() else []
  done = {(r["lever"], r["seed"]) for r in rows}
  study = judges.Judges(base)
  held_path = base / f"tokens_{HELD_OUT}.npz"
  if not held_path.exists():
    pretokenize.pretokenize(str(base / "tokenizer"), "animal_mnist", HELD_OUT,
                            32, str(held_path), progress=lambda _: None)
  held = np.load(held_path)
  if args.decode_sweep:
    decode_sweep(pathlib.Path(args.decode_sweep), study, out)
    return 0
  if args.checkpoints:
    checkpoint_scores(pathlib.Path(args.checkpoints), study, out)
    return 0
  names = args.levers.split(",")
  unknown = sorted(set(names) - set(LEVERS))
  if unknown:
    raise ValueError(f"unknown levers {unknown}; expected some of "
                     f"{sorted(LEVERS)}")
  # Every step cost first, before any training competes for the cores;
  # levers that change neither the batch nor the model train args.steps.
  costly = [n for n in names if any(k.startswith(COST_FIELDS)
                                    for k in LEVERS[n])]
  common = parse_settings(args.set)
  costs = {name: step_cost(lever_config(base, {**common, **LEVERS[name]},
                                        args.steps, 0))
           for name in dict.fromkeys(["baseline"] + costly)}
  for name in names:
    overrides = {**common, **LEVERS[name]}
    cost = costs.get(name, costs["baseline"])
    steps = int(round(args.steps * costs["baseline"] / cost))
    for seed in (int(s) for s in args.seeds.split(",")):
      if (name, seed) in done:
        continue
      config = lever_config(base, overrides, steps, seed)
      workdir = out / f"{name}_seed{seed}"
      start = time.time()
      loop.train_and_evaluate(config, workdir)
      row = dict(lever=name, seed=seed, steps=steps, ms_per_step=cost * 1e3,
                 train_minutes=(time.time() - start) / 60,
                 heldout_loss=heldout_loss(workdir, held["tokens"][:, 0],
                                           held["labels"]),
                 **sample_scores(workdir, study))
      print(json.dumps(row), flush=True)
      rows.append(row)
      results_path.write_text(json.dumps(rows, indent=1) + "\n")
      (out / "levers.md").write_text(markdown(rows) + "\n")
  return 0


def main(argv=None) -> int:
  sharding.split_host_cpu()  # before JAX starts (it starts lazily)
  parser = cli.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--base", required=True)
  parser.add_argument("--out", default="runs/levers")
  parser.add_argument("--levers", default="baseline")
  parser.add_argument("--seeds", default="0")
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--set", action="append", default=[],
                      help="key=value applied to every run (the baseline's "
                      "settings), e.g. optimizer.learning_rate=1e-3")
  parser.add_argument("--decode_sweep", default="",
                      help="a stage-2 workdir: sweep its decode options")
  parser.add_argument("--checkpoints", default="",
                      help="a stage-2 workdir: score each saved step")
  return cli.run_args(run, parser, argv)


if __name__ == "__main__":
  sys.exit(main())
