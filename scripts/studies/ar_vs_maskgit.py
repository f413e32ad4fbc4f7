"""MaskGIT against the autoregressive prior, decided fairly (issue 28).

    python -m maskgit_jax.tools.demo --out runs/base \
        --train_split train_minus_validation                  # the base run
    python -m scripts.studies.ar_vs_maskgit --base runs/base --out runs/ar_vs_maskgit \
        [--arms maskgit,maskgit_matched,ar] [--budgets 725,1450,2900,5800] \
        [--seeds 0,1,2] [--learning_rates 1e-3,3e-3,6e-3] [--samples 1000]

On the base run's tokenizer and tokens (``scripts/studies/judges.py``: the
validation split held out of everything trained):

1. **learning-rate screen** per arm and budget, training seed 0: the rate
   whose model has the lowest development distance (500 samples at the
   arm's preset decode settings) trains that budget's seeds (the best rate
   moves with the length of the cosine schedule); a best rate at an end of
   ``--learning_rates`` is followed past it (a third below, twice above)
   until the best is inside;
2. **training**: every arm x budget x training seed (``config.seed``),
   resumable (a workdir with ``minutes.json`` is kept);
3. **decode tuning** per arm and budget on the seed-0 model (every
   evaluation appended to ``OUT/search_ARM_BUDGET.jsonl``; an interrupted
   search resumes from it), starting from the arm's pick at the largest
   smaller budget already tuned (the preset's defaults at the first): a coordinate
   search (``scripts/studies/tuning.py``) over guidance and its schedule,
   choice temperature, temperature, top-k, top-p, T up to 64 and the mask
   schedule (the prior: guidance, temperature, top-k, top-p), minimising the
   development distance on the validation split; an optimum at the end of
   an axis is pushed past it, so a pick at an edge is a true bound;
4. **scoring**: every seed's model with its arm's picked settings,
   ``--samples`` class-balanced samples scored by the demo's judge against
   the test split; means over training seeds with standard errors
   (``maskgit_jax.evaluation.uncertainty``), and per budget a verdict of
   each MaskGIT arm against the prior (Welch's interval over training seeds).

Arms: ``maskgit`` (the demo recipe: post-LN, label smoothing 0.1),
``maskgit_matched`` (the prior's pre-LN blocks run bidirectionally, no label
smoothing: as the prior trains) and ``ar`` (``presets/ar_animal_mnist``).
Results: ``OUT/results.json`` (every run, tuning row and score) and
``OUT/ar_vs_maskgit.md``.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np

from scripts.studies import tuning

ARMS = {
    "maskgit": ("maskgit", {}),
    "maskgit_matched": ("maskgit", {"model.norm": "pre",
                                    "masking.label_smoothing": 0.0}),
    "ar": ("ar", {}),
}
TUNE_SAMPLES = 500
TUNE_SEED = 100
_GUIDANCE = tuning.Axis("cfg_scale", (0.0, 0.5, 1.0, 2.0, 3.0),
                        tuning.scaled(2.0, 0.0, 32.0))
_TEMPERATURE = tuning.Axis("temperature", (0.6, 0.8, 1.0, 1.2),
                           tuning.scaled(1.25, 0.1, 4.0))
_TOP_K = tuning.Axis("top_k", (16, 32, 64, 128), tuning.scaled(2, 2, 128))
_TOP_P = tuning.Axis("top_p", (0.8, 0.9, 0.95, 1.0),
                     lambda v, up: None if up or v <= 0.3 else round(v - 0.1, 2))
AXES = {
    "maskgit": (_GUIDANCE,
                tuning.Axis("cfg_schedule", ("constant", "linear",
                                             "power_cosine")),
                tuning.Axis("choice_temperature", (2.0, 4.5, 6.0, 9.0, 12.0),
                            tuning.scaled(1.5, 0.25, 100.0)),
                _TEMPERATURE, _TOP_K, _TOP_P,
                tuning.Axis("num_iter", (8, 16, 32, 64),
                            tuning.scaled(2, 2, 64)),
                tuning.Axis("schedule", ("cosine", "linear"))),
    "ar": (_GUIDANCE, _TEMPERATURE, _TOP_K, _TOP_P),
}


def arm_config(arm: str, base: pathlib.Path, *, steps: int, seed: int,
               learning_rate: float | None = None, variant: str = "default"):
  """The config of ``arm`` on the base run's tokens (``variant``: the
  presets' "tiny" for tests)."""
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import ar_animal_mnist
  from maskgit_jax.presets import common
  from maskgit_jax.presets import maskgit_animal_mnist
  # pylint: enable=g-import-not-at-top
  kind, overrides = ARMS[arm]
  preset = ar_animal_mnist if kind == "ar" else maskgit_animal_mnist
  config = preset.get_config(variant)
  common.override(config, overrides)
  return on_base_tokens(config, base, steps=steps, seed=seed,
                        learning_rate=learning_rate)


def on_base_tokens(config, base: pathlib.Path, *, steps: int, seed: int,
                   learning_rate: float | None = None):
  """``config`` trained on the base run's tokenizer and cached tokens for
  ``steps`` (one checkpoint at the end, no previews), with training seed
  ``seed`` and, when given, ``learning_rate``. Returns ``config``."""
  config.tokenizer_checkpoint = str(base / "tokenizer")
  config.data.name = f"tokens:{base / 'tokens_train.npz'}"
  config.seed = seed
  if learning_rate is not None:
    config.optimizer.learning_rate = learning_rate
  config.update(num_train_steps=steps, checkpoint_every_steps=steps,
                preview_every_steps=0, log_every_steps=max(steps // 10, 1))
  return config


def start_settings(arm: str, config) -> dict:
  """The tuning's starting point: the preset's decode defaults, with
  top-k "off" written as the codebook size (the same filter)."""
  codebook_size = config.model.codebook_size
  if ARMS[arm][0] == "ar":
    s = dict(config.sampling)
    return dict(cfg_scale=s["cfg_scale"], temperature=s["temperature"],
                top_k=s["top_k"] or codebook_size, top_p=s["top_p"])
  d = config.decode
  return dict(cfg_scale=d.cfg_scale, cfg_schedule=d.cfg_schedule,
              choice_temperature=d.choice_temperature,
              temperature=d.temperature, top_k=d.top_k or codebook_size,
              top_p=d.top_p, num_iter=d.num_iter, schedule=d.schedule)


def cell_key(arm: str, budget: int, rate: float) -> str:
  """``results["tuning"]``'s key of a cell's model: "ARM BUDGET lrRATE"."""
  return f"{arm} {budget} lr{rate:g}"


def search_start(arm: str, budget: int, results: dict, config) -> dict:
  """Where ``arm``'s decode search at ``budget`` starts: its pick at the
  largest smaller budget screened and tuned (at that budget's picked
  rate), else :func:`start_settings` of ``config``."""
  earlier = [
      (b, cell_key(arm, b, e["picked"]))
      for b, e in ((int(k.rsplit(" ", 1)[1]), e)
                   for k, e in results["learning_rate"].items()
                   if k.rsplit(" ", 1)[0] == arm and "picked" in e)
      if b < budget]
  earlier = [(b, k) for b, k in earlier if k in results["tuning"]]
  if not earlier:
    return start_settings(arm, config)
  return dict(results["tuning"][max(earlier)[1]]["best"])


def current_rows(results: dict) -> list[dict]:
  """The scored rows of each cell's picked learning rate (a cell re-screened
  at a budget leaves its earlier rate's rows in the file, not the table)."""
  picked = {k: e.get("picked") for k, e in results["learning_rate"].items()}
  return [r for r in results["rows"]
          if picked.get(f"{r['arm']} {r['budget']}") == r["learning_rate"]]


def next_rate(tried: dict[str, float]) -> float | None:
  """The learning rate past the end of the screen where the best one lies
  (a third below the lowest, twice the highest), or None when the best is
  inside or the next would leave [1e-4, 2e-2]."""
  rates = sorted(float(r) for r in tried)
  best = float(min(tried, key=tried.get))
  if len(rates) < 2 or rates[0] < best < rates[-1]:
    return None
  nxt = round(best / 3, 10) if best == rates[0] else best * 2
  return nxt if 1e-4 <= nxt <= 2e-2 else None


def screen_learning_rate(screens: dict, arm: str, rates: list[float],
                         make_config, make_workdir, score, save) -> float:
  """The learning-rate screen of ``arm`` (step 1), resumable: trains
  ``make_config(rate)`` into ``make_workdir(rate)`` for each of ``rates``
  not yet in ``screens[arm]["tried"]``, records ``score(generator,
  config)`` (lower is better), follows a best rate at an end past it
  (:func:`next_rate`), calls ``save()`` after each; returns the pick."""
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  screen = screens.setdefault(arm, {"tried": {}})
  grow = lambda: [r for r in [next_rate(screen["tried"])] if r is not None]  # pylint: disable=unnecessary-lambda-assignment
  queue = [r for r in rates if str(r) not in screen["tried"]] or grow()
  while queue:
    rate = queue.pop(0)
    config, wd = make_config(rate), make_workdir(rate)
    train(config, wd)
    screen["tried"][str(rate)] = score(sampling.load(wd, batch_size=64),
                                       config)
    print(json.dumps(dict(arm=arm, learning_rate=rate,
                          dev_fd=screen["tried"][str(rate)])), flush=True)
    save()
    queue = queue or grow()  # an optimum at an end: try past it
  screen["picked"] = float(min(screen["tried"], key=screen["tried"].get))
  save()
  return screen["picked"]


def as_options(settings: dict, codebook_size: int) -> dict:
  """Settings as sampling options: top-k at the codebook size is off (0),
  so that it runs the unfiltered program."""
  if settings.get("top_k", 0) >= codebook_size:
    settings = dict(settings, top_k=0)
  return settings


def train(config, workdir: pathlib.Path) -> float:
  """Trains ``config`` into ``workdir`` (kept when finished); minutes."""
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  record = workdir / "minutes.json"
  if record.exists():
    return json.loads(record.read_text())["minutes"]
  start = time.time()
  loop.train_and_evaluate(config, workdir)
  minutes = (time.time() - start) / 60
  record.write_text(json.dumps({"minutes": minutes,
                                "steps": config.num_train_steps}))
  return minutes


def develop(gen, study, settings: dict, codebook_size: int) -> float:
  """The development distance of ``settings`` (lower is better) from
  ``TUNE_SAMPLES`` class-balanced samples."""
  labels = np.arange(TUNE_SAMPLES) % 10
  images = gen.generate(labels, seed=TUNE_SEED,
                        **as_options(settings, codebook_size))
  return study.develop(images, labels)[1]


def summary(rows: list[dict], samples: int) -> list[dict]:
  """Per budget and arm: seed means with standard errors, and each
  MaskGIT arm's verdict against the prior."""
  from maskgit_jax.evaluation import uncertainty  # pylint: disable=g-import-not-at-top
  table = []
  for budget in sorted({r["budget"] for r in rows}):
    cells = {}
    for arm in ARMS:
      runs = [r for r in rows if (r["budget"], r["arm"]) == (budget, arm)]
      if not runs:
        continue
      cells[arm] = runs
      table.append(dict(
          budget=budget, arm=arm, seeds=len(runs),
          minutes=float(np.mean([r["minutes"] for r in runs])),
          accuracy=uncertainty.accuracy_over_seeds(
              [r["accuracy"] for r in runs], samples).as_dict(),
          fid=uncertainty.over_seeds([r["fid"] for r in runs]).as_dict(),
          settings=runs[0]["settings"]))
    for arm in ("maskgit", "maskgit_matched"):
      if arm in cells and "ar" in cells:
        verdicts = {}
        for key, higher in (("accuracy", True), ("fid", False)):
          diff = uncertainty.difference(
              [r[key] for r in cells[arm]], [r[key] for r in cells["ar"]],
              paired=False)
          verdicts[key] = uncertainty.verdict(diff, (arm, "ar"),
                                              higher_is_better=higher)
        table.append(dict(budget=budget, arm=f"{arm} vs ar", **verdicts))
  return table


def markdown(table: list[dict]) -> str:
  lines = ["| budget | arm | seeds | minutes | class accuracy | classifier "
           "FID | settings / verdict |", "|---|---|---|---|---|---|---|"]
  from maskgit_jax.evaluation import uncertainty  # pylint: disable=g-import-not-at-top
  fmt = lambda e, d: uncertainty.Estimate(**e).format(d)  # pylint: disable=unnecessary-lambda-assignment
  for r in table:
    if "seeds" in r:
      settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
      lines.append(f"| {r['budget']} | {r['arm']} | {r['seeds']} | "
                   f"{r['minutes']:.1f} | {fmt(r['accuracy'], 3)} | "
                   f"{fmt(r['fid'], 2)} | {settings} |")
    else:
      lines.append(f"| {r['budget']} | {r['arm']} | | | {r['accuracy']} | "
                   f"{r['fid']} | |")
  return "\n".join(lines) + "\n"


def screen_markdown(screen: dict) -> str:
  """The learning-rate screen: one row per arm, the development distance
  of every rate tried (the picked one in bold)."""
  rates = sorted({float(r) for e in screen.values() for r in e["tried"]})
  lines = ["| arm | " + " | ".join(f"lr {r:g}" for r in rates) + " |",
           "|---|" + "---|" * len(rates)]
  for arm, entry in screen.items():
    tried = {float(r): v for r, v in entry["tried"].items()}
    best = min(tried, key=tried.get)
    cells = ["" if r not in tried else
             (f"**{tried[r]:.2f}**" if r == best else f"{tried[r]:.2f}")
             for r in rates]
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def run(args) -> int:
  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling
  from scripts.studies import judges
  # pylint: enable=g-import-not-at-top
  base, out = pathlib.Path(args.base), pathlib.Path(args.out)
  study = judges.Judges(base, arm_config(
      "ar", base, steps=1, seed=0, variant=args.variant).image_size)
  results, save = judges.open_results(out, ("learning_rate", "tuning"))
  arms = args.arms.split(",")
  budgets = [int(b) for b in args.budgets.split(",")]
  seeds = [int(s) for s in args.seeds.split(",")]
  rates = [float(r) for r in args.learning_rates.split(",")]

  def workdir(arm, budget, seed, rate):
    return out / f"{arm}_lr{rate:g}_{budget}_s{seed}"

  for budget in budgets:
    for arm in arms:
      rate = screen_learning_rate(  # 1. the learning rate, per budget
          results["learning_rate"], f"{arm} {budget}", rates,
          lambda rate, arm=arm, budget=budget: arm_config(
              arm, base, steps=budget, seed=0, learning_rate=rate,
              variant=args.variant),
          lambda rate, arm=arm, budget=budget: workdir(arm, budget, 0, rate),
          lambda gen, config, arm=arm: develop(
              gen, study, start_settings(arm, config),
              config.model.codebook_size), save)
      configs = {s: arm_config(arm, base, steps=budget, seed=s,
                               learning_rate=rate, variant=args.variant)
                 for s in seeds}
      codes = configs[seeds[0]].model.codebook_size
      minutes = {s: train(configs[s], workdir(arm, budget, s, rate))
                 for s in seeds}
      def search(arm=arm, budget=budget, rate=rate, configs=configs,
                 codes=codes):  # 3. decode tuning on seed 0
        gen = sampling.load(workdir(arm, budget, seeds[0], rate),
                            batch_size=64)
        return tuning.logged_search(
            lambda s: develop(gen, study, s, codes), AXES[ARMS[arm][0]],
            search_start(arm, budget, results, configs[seeds[0]]),
            out / f"search_{arm}_{budget}_lr{rate:g}.jsonl")
      settings = judges.tuned(results, cell_key(arm, budget, rate), search,
                              save)
      for seed in judges.unscored(results["rows"], seeds, budget=budget,
                                  arm=arm, learning_rate=rate):  # 4. scoring
        gen = sampling.load(workdir(arm, budget, seed, rate), batch_size=64)
        results["rows"].append(dict(
            budget=budget, arm=arm, seed=seed, learning_rate=rate,
            minutes=minutes[seed], settings=settings,
            **study.score(gen, args.samples, **as_options(settings, codes))))
        print(json.dumps(results["rows"][-1]), flush=True)
        save()
  (out / "screen.md").write_text(screen_markdown(results["learning_rate"]))
  table = summary(current_rows(results), args.samples)
  results["summary"] = table
  save()
  (out / "ar_vs_maskgit.md").write_text(markdown(table))
  print(markdown(table))
  return 0


def main(argv=None) -> int:
  from scripts.studies import judges  # pylint: disable=g-import-not-at-top
  parser = judges.study_parser(__doc__, ARMS)
  parser.add_argument("--budgets", default="725,1450,2900,5800")
  parser.add_argument("--learning_rates", default="1e-3,3e-3,6e-3")
  return run(judges.parse_study_args(parser, ARMS, argv))


if __name__ == "__main__":
  sys.exit(main())
