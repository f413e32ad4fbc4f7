"""MAGE on equal terms (issue 28): against an unconditional MaskGIT of
equal compute, with its own optimizer, MAGE-C, and probes on matched
features.

    python -m scripts.studies.mage_equal_terms --base runs/base --out runs/mage_equal \
        [--arms mage,mage_own,mage_c,maskgit_uncond,maskgit_null] \
        [--seeds 0,1,2] \
        [--steps 1450] [--samples 1000]

Every arm trains at the demo's batch (64) for ``--steps``, on the base
run's tokens (``scripts/studies/judges.py``: nothing trained sees the
validation split). Equal steps are equal compute here: per step, MAGE's
4-block encoder on [C] and 32 kept tokens plus its 2-block decoder on 65
positions cost 4 x 33 + 2 x 65 = 262 block-positions, a 4-block MaskGIT on
65 positions 260. Arms:

* ``mage``: ``configs/mage_animal_mnist.py`` (the demo's optimizer);
* ``mage_own``: MAGE with the reference's optimizer (AdamW b2 0.95, weight
  decay 0.05 on matrices only, gradient clipping 3.0, warm-up 40/1,600 of
  the steps);
* ``mage_c``: MAGE-C (variant ``contrastive``), the ``mage`` arm's
  optimizer; its weight x temperature screened (below);
* ``maskgit_uncond``: an unconditional MaskGIT of the same width and depth
  (pre-LN as MAGE, label smoothing 0.1 as MAGE; ``masking.unconditional``);
* ``maskgit_null``: the demo's class-conditional MaskGIT (the ``maskgit``
  arm of ``ar_vs_maskgit``: post-LN, label dropout 0.1), sampled with its
  null class (``Generator.sample_unconditional``); its probe features see
  the null class token too.

1. **learning rate** per arm (seed 0): the lowest development distance
   (500 unconditional samples at the preset's decode, against validation)
   over ``--learning_rates``, followed past an edge
   (:func:`scripts.studies.ar_vs_maskgit.screen_learning_rate`); MAGE-C
   takes the ``mage`` arm's;
2. **MAGE-C's constants** (seed 0): weight {0.03, 0.1, 0.3} x temperature
   {0.1, 0.2} (``--contrastive_grid``), picked by the linear probe's accuracy on validation (probe
   trained on ``train_minus_validation``; MAGE-C is for representations);
3. **training**: every arm x ``--seeds``;
4. **decode tuning** per arm on seed 0 (validation): choice temperature,
   temperature, T and the mask schedule (no guidance: unconditional);
5. **scoring** on test: ``--samples`` unconditional samples per seed, the
   demo judge's classifier FID and the total variation of its class
   histogram from uniform; the linear probe (train_minus_validation ->
   test) of every arm's features and of pixels and the tokenizer's
   latents, each pooled (mean over positions) and flattened.

Writes ``OUT/results.json`` and ``OUT/mage_equal_terms.md``; resumable.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from maskgit_jax.evaluation import metrics
from maskgit_jax.evaluation import representations
from scripts.studies import ar_vs_maskgit
from scripts.studies import tuning

ARMS = ("mage", "mage_own", "mage_c", "maskgit_uncond", "maskgit_null")
CONTRASTIVE_GRID = "0.03:0.1,0.03:0.2,0.1:0.1,0.1:0.2,0.3:0.1,0.3:0.2"


def contrastive_grid(text: str) -> list[dict]:
  """``"WEIGHT:TEMPERATURE,..."`` -> MAGE-C constants to screen."""
  grid = []
  for item in text.split(","):
    weight, temperature = (float(v) for v in item.split(":"))
    grid.append(dict(contrastive_weight=weight,
                     contrastive_temperature=temperature))
  return grid


POOLINGS = representations.POOLINGS
AXES = (tuning.Axis("choice_temperature", (2.0, 4.5, 6.0, 9.0, 12.0),
                    tuning.scaled(1.5, 0.25, 100.0)),
        tuning.Axis("temperature", (0.6, 0.8, 1.0, 1.2),
                    tuning.scaled(1.25, 0.1, 4.0)),
        tuning.Axis("num_iter", (8, 16, 32, 64), tuning.scaled(2, 2, 64)),
        tuning.Axis("schedule", ("cosine", "linear")))


def arm_config(arm: str, base: pathlib.Path, *, steps: int, seed: int,
               learning_rate: float | None = None, variant: str = "default",
               contrastive: dict | None = None):
  """The config of ``arm`` on the base run's tokens (``variant``: the
  presets' "tiny" for tests)."""
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import mage_animal_mnist
  from maskgit_jax.presets import maskgit_animal_mnist
  # pylint: enable=g-import-not-at-top
  if arm == "maskgit_null":
    config = ar_vs_maskgit.arm_config("maskgit", base, steps=steps,
                                      seed=seed, learning_rate=learning_rate,
                                      variant=variant)
    config.masking.label_dropout = 0.1  # the demo's (the tiny preset: none)
    return config
  if arm == "maskgit_uncond":
    config = maskgit_animal_mnist.get_config(variant)
    config.model.update(num_classes=1, norm="pre")
    config.masking.update(unconditional=True, label_dropout=0.0)
    config.decode.cfg_scale = 0.0
  else:
    config = mage_animal_mnist.get_config(variant)
    config.decode.cfg_scale = 0.0
  if arm == "mage_own":
    config.optimizer.update(b2=0.95, weight_decay=0.05,
                            decay_matrices_only=True, grad_clip=3.0,
                            warmup_steps=max(round(steps * 40 / 1600), 1))
  if arm == "mage_c":
    config.model.projection_dim = 16 if variant == "tiny" else 128
    config.mage.update(contrastive or dict(contrastive_weight=0.1,
                                           contrastive_temperature=0.1))
  return ar_vs_maskgit.on_base_tokens(config, base, steps=steps, seed=seed,
                                     learning_rate=learning_rate)


def start_settings(config) -> dict:
  d = config.decode
  return dict(choice_temperature=d.choice_temperature,
              temperature=d.temperature, num_iter=d.num_iter,
              schedule=d.schedule)


def develop(gen, study, settings: dict) -> float:
  """The development distance of ``settings``: ``TUNE_SAMPLES``
  unconditional samples against validation (lower is better)."""
  count = ar_vs_maskgit.TUNE_SAMPLES
  images = gen.sample_unconditional(count, seed=ar_vs_maskgit.TUNE_SEED,
                                    **settings).images
  return study.develop(images, np.zeros(count, np.int32))[1]


def probe(kind: str, checkpoint, pooling: str, out: pathlib.Path,
          eval_split: str, epochs: int) -> float:
  """The probe's accuracy on ``eval_split`` (trained on
  ``train_minus_validation``; ``python -m maskgit_jax.evaluation.probe``
  in this process), cached in ``out``."""
  from maskgit_jax.evaluation import probe as probe_cli  # pylint: disable=g-import-not-at-top
  if not out.exists():
    argv = [f"--features={kind}", f"--pooling={pooling}",
            "--train_split=train_minus_validation",
            f"--eval_split={eval_split}", f"--epochs={epochs}",
            f"--output_json={out}"]
    if checkpoint is not None:
      argv.append(f"--checkpoint={checkpoint}")
    if probe_cli.main(argv) != 0:
      raise RuntimeError(f"the probe failed: {argv}")
  return json.loads(out.read_text())["test_accuracy"]


def total_variation(histogram: list[int]) -> float:
  """Distance of a class histogram from uniform, in [0, 1)."""
  shares = np.asarray(histogram, float) / max(sum(histogram), 1)
  return float(0.5 * np.abs(shares - 1.0 / len(shares)).sum())


def feature_kind(arm: str) -> str:
  return "maskgit" if arm.startswith("maskgit") else "mage"


def markdown(results: dict) -> str:
  """The generation table (mean +- standard error over training seeds) and
  the probe table (test accuracy; an arm's over its seeds: ``probes[name]
  [pooling]`` maps a seed, or "-", to its accuracy)."""
  from maskgit_jax.evaluation import uncertainty  # pylint: disable=g-import-not-at-top
  lines = ["| arm | seeds | classifier FID | histogram TV | minutes |",
           "|---|---|---|---|---|"]
  by_arm = {}
  for row in results["rows"]:
    by_arm.setdefault(row["arm"], []).append(row)
  for arm, rows in by_arm.items():
    fid = uncertainty.over_seeds([r["fid"] for r in rows])
    tv = uncertainty.over_seeds([r["tv"] for r in rows])
    lines.append(f"| {arm} | {len(rows)} | {fid.format(1)} | {tv.format(3)} "
                 f"| {np.mean([r['minutes'] for r in rows]):.1f} |")
  lines += ["", "| features | " + " | ".join(POOLINGS) + " |",
            "|---|" + "---|" * len(POOLINGS)]
  for name, cells in results["probes"].items():
    lines.append(f"| {name} | " + " | ".join(
        uncertainty.over_seeds(list(cells[p].values())).format(3)
        if cells.get(p) else ""
        for p in POOLINGS) + " |")
  return "\n".join(lines) + "\n"


def contrastive_workdir(out: pathlib.Path, constants: dict, seed: int
                        ) -> pathlib.Path:
  return out / ("mage_c_w{contrastive_weight:g}_t{contrastive_temperature:g}"
                f"_s{seed}").format(**constants)


def _screen_contrastive(results, base, rate, args, save) -> dict:
  """MAGE-C's weight x temperature on seed 0, by validation probe accuracy."""
  tried = results.setdefault("contrastive", {"tried": {}})["tried"]
  out = pathlib.Path(args.out)
  for constants in contrastive_grid(args.contrastive_grid):
    key = json.dumps(constants, sort_keys=True)
    if key in tried:
      continue
    wd = contrastive_workdir(out, constants, 0)
    ar_vs_maskgit.train(arm_config(
        "mage_c", base, steps=args.steps, seed=0, learning_rate=rate,
        variant=args.variant, contrastive=constants), wd)
    tried[key] = probe("mage", wd, "mean", wd / "probe_validation.json",
                       "validation", args.probe_epochs)
    print(json.dumps(dict(constants, validation_probe=tried[key])), flush=True)
    save()
  picked = json.loads(max(tried, key=tried.get))
  results["contrastive"]["picked"] = picked
  save()
  return picked


def run(args) -> int:
  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling
  from scripts.studies import judges
  # pylint: enable=g-import-not-at-top
  base, out = pathlib.Path(args.base), pathlib.Path(args.out)
  study = judges.Judges(base, arm_config(
      "mage", base, steps=1, seed=0, variant=args.variant).image_size)
  results, save = judges.open_results(out, ("learning_rate", "tuning",
                                            "probes"))
  arms = args.arms.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  rates = [float(r) for r in args.learning_rates.split(",")]

  def workdir(arm, seed):  # seed 0's is the screen's model, not retrained
    if arm == "mage_c":
      return contrastive_workdir(out, contrastive, seed)
    return out / f"{arm}_lr{picked_rate[arm]:g}_s{seed}"

  def screened(arm):  # 1. the learning rate (MAGE-C: the mage arm's)
    source = "mage" if arm == "mage_c" else arm
    return ar_vs_maskgit.screen_learning_rate(
        results["learning_rate"], source, rates,
        lambda rate: arm_config(source, base, steps=args.steps, seed=0,
                                learning_rate=rate, variant=args.variant),
        lambda rate: out / f"{source}_lr{rate:g}_s0",  # = workdir(arm, 0)
        lambda gen, config: develop(gen, study, start_settings(config)),
        save)

  picked_rate = {arm: screened(arm) for arm in arms}
  contrastive = (_screen_contrastive(results, base, picked_rate["mage_c"],
                                     args, save) if "mage_c" in arms else None)
  for arm in arms:
    configs = {s: arm_config(arm, base, steps=args.steps, seed=s,
                             learning_rate=picked_rate[arm],
                             variant=args.variant, contrastive=contrastive)
               for s in seeds}
    minutes = {s: ar_vs_maskgit.train(configs[s], workdir(arm, s))
               for s in seeds}
    def search(arm=arm, configs=configs):  # 4. decode tuning on seed 0
      gen = sampling.load(workdir(arm, seeds[0]), batch_size=64)
      return tuning.logged_search(
          lambda s: develop(gen, study, s), AXES,
          start_settings(configs[seeds[0]]), out / f"search_{arm}.jsonl")
    settings = judges.tuned(results, arm, search, save)
    for seed in judges.unscored(results["rows"], seeds,
                                arm=arm):  # 5. scoring on test
      gen = sampling.load(workdir(arm, seed), batch_size=64)
      images = gen.sample_unconditional(args.samples, seed=0,
                                        **settings).images
      judged = study.judge.outputs(images)  # once: FID and histogram
      fid = float(metrics.frechet_distance(
          metrics.Statistics.of(judged["pool"]), study.reference))
      histogram = np.bincount(np.asarray(judged["logits"]).argmax(-1),
                              minlength=10).tolist()
      results["rows"].append(dict(
          arm=arm, seed=seed, learning_rate=picked_rate[arm],
          minutes=minutes[seed], settings=settings, fid=fid,
          histogram=histogram, tv=total_variation(histogram)))
      print(json.dumps(results["rows"][-1]), flush=True)
      save()
    for seed in seeds:  # the probes of each seed's features
      for pooling in POOLINGS:
        results["probes"].setdefault(arm, {}).setdefault(pooling, {})[
            str(seed)] = probe(feature_kind(arm), workdir(arm, seed), pooling,
                               workdir(arm, seed) / f"probe_test_{pooling}.json",
                               "test", args.probe_epochs)
      save()
  for kind, checkpoint in (("pixels", None), ("tokenizer", base / "tokenizer")):
    for pooling in POOLINGS:
      results["probes"].setdefault(kind, {})[pooling] = {"-": probe(
          kind, checkpoint, pooling, out / f"probe_{kind}_{pooling}.json",
          "test", args.probe_epochs)}
  save()
  table = markdown(results)
  (out / "mage_equal_terms.md").write_text(table)
  print(table)
  return 0


def main(argv=None) -> int:
  from scripts.studies import judges  # pylint: disable=g-import-not-at-top
  parser = judges.study_parser(__doc__, ARMS)
  parser.add_argument("--steps", type=int, default=1450)
  parser.add_argument("--learning_rates", default="1e-3,3e-3,6e-3")
  parser.add_argument("--probe_epochs", type=int, default=90)
  parser.add_argument("--contrastive_grid", default=CONTRASTIVE_GRID,
                      help="MAGE-C's WEIGHT:TEMPERATURE pairs to screen")
  return run(judges.parse_study_args(parser, ARMS, argv))


if __name__ == "__main__":
  sys.exit(main())
