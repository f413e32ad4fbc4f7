"""Continuous latents against VQ tokens on the demo's data (issue 29).

    python -m maskgit_jax.tools.demo --out runs/base \
        --train_split train_minus_validation                  # the base run
    python -m scripts.studies.continuous_latents --base runs/base \
        --out runs/continuous [--seeds 0,1,2] [--samples 1000]

On a base run (``scripts/studies/judges.py``: validation held out of
everything trained; choices on validation with the development judge,
reports on test with the demo's judge):

1. **the tokenizers' ceiling**: a VAE (``presets/vae_animal_mnist``: the
   VQGAN's recipe and steps with a Gaussian posterior, the base run's
   perceptual network) trained on the base run's split; its reconstructions
   of the test split and the base run's VQGAN's, scored by the demo's judge;
2. **equal minutes**: the VQ arm is the demo's MaskGIT (1,450 steps); a
   continuous arm gets the steps that take the same time, from a
   calibration that trains every arm in turn in one process (steps per
   second as ratios to MaskGIT's, the tokenizers' costs being equal);
3. **training**: each arm x training seed (the VQ arm's seed 0 is the base
   run's own MaskGIT);
4. **decode choice** per arm on its seed-0 model: a coordinate search
   (``scripts/studies/tuning.py``) on the validation split, the same size
   for every arm;
5. **scoring**: every seed's model at its arm's pick, ``--samples``
   class-balanced samples on test; decode milliseconds per image; means
   over training seeds with standard errors and Welch verdicts of each
   continuous arm against MaskGIT
   (:mod:`maskgit_jax.evaluation.uncertainty`).

Results: ``OUT/results.json`` and ``OUT/continuous_latents.md``.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from scripts.studies import tuning

ARMS = ("maskgit", "diffusion", "mixture")
TUNE_SAMPLES = 500
TUNE_SEED = 100
CALIBRATION_STEPS = 60
AXES = {
    "maskgit": (
        tuning.Axis("cfg_scale", (1.0, 2.0, 3.0, 4.0),
                    tuning.scaled(1.5, 0.0, 16.0)),
        tuning.Axis("choice_temperature", (2.0, 4.5, 9.0),
                    tuning.scaled(2.0, 0.25, 64.0)),
        tuning.Axis("temperature", (0.6, 0.8, 1.0),
                    tuning.scaled(1.25, 0.1, 4.0)),
        tuning.Axis("num_iter", (8, 16), tuning.scaled(2, 2, 64))),
    "diffusion": (
        tuning.Axis("cfg_scale", (0.0, 1.0, 2.0, 3.0),
                    tuning.scaled(1.5, 0.0, 16.0)),
        # DDPM's clip of the implied clean token (diffusion.step): a short-
        # trained head's epsilon error is multiplied ~300x by the cosine
        # schedule's first respaced step; MAR (long-trained) does not clip.
        tuning.Axis("clip_x0", (1.0, 2.0, 3.0, 5.0),
                    tuning.scaled(1.5, 0.25, 64.0)),
        tuning.Axis("temperature", (0.8, 0.95, 1.0, 1.1),
                    tuning.scaled(1.15, 0.1, 4.0)),
        tuning.Axis("num_iter", (8, 16), tuning.scaled(2, 1, 64)),
        tuning.Axis("steps", (25, 50), tuning.scaled(2, 5, 200))),
    "mixture": (
        tuning.Axis("temperature", (0.5, 0.7, 0.85, 1.0),
                    tuning.scaled(1.2, 0.05, 4.0)),
        tuning.Axis("order", ("random", "density")),
        tuning.Axis("choice_temperature", (0.0, 1.0, 2.0, 4.0),
                    tuning.scaled(2.0, 0.0, 64.0)),
        tuning.Axis("num_iter", (8, 16), tuning.scaled(2, 2, 64))),
}
START = {
    # The search without the clip axis picked guidance 6.75, tau 0.8, T 8,
    # 12 head steps (its rows: search_diffusion_unclipped.jsonl); the
    # search with it starts there, at clip 3.
    "diffusion": {"cfg_scale": 6.75, "clip_x0": 3.0, "temperature": 0.8,
                  "num_iter": 8, "steps": 12},
    "mixture": {"temperature": 1.0, "order": "density",
                "choice_temperature": 1.0, "num_iter": 16},
}


def vae_config(base: pathlib.Path, variant: str = "default"):
  """The VAE: the demo tokenizer's recipe on the base run's split."""
  from maskgit_jax.presets import vae_animal_mnist  # pylint: disable=g-import-not-at-top
  from scripts.studies import judges  # pylint: disable=g-import-not-at-top
  config = vae_animal_mnist.get_config(variant)
  if config.losses.perceptual_weight:
    config.perceptual_network = str(base / "perceptual.npz")
  config.data.split = judges.BASE_SPLIT
  return config


def arm_config(arm: str, base: pathlib.Path, out: pathlib.Path, *,
               steps: int | None, seed: int, variant: str = "default"):
  """``arm``'s training config (``steps`` None: the preset's)."""
  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import continuous_animal_mnist
  from maskgit_jax.presets import maskgit_animal_mnist
  from scripts.studies import ar_vs_maskgit
  # pylint: enable=g-import-not-at-top
  if arm == "maskgit":
    steps = steps or maskgit_animal_mnist.get_config(variant).num_train_steps
    config = ar_vs_maskgit.arm_config("maskgit", base, steps=steps, seed=seed,
                                      variant=variant)
  else:
    config = continuous_animal_mnist.get_config(variant)
    config.continuous.head = arm
    config.tokenizer_checkpoint = str(out / "vae")
    config.data.name = f"latents:{out / 'latents_train.npz'}"
    config.seed += seed
    if arm == "mixture":  # no guidance (GIVT guides by rejection)
      config.sampling.update(cfg_scale=0.0, order="density",
                             choice_temperature=1.0)
    steps = steps or config.num_train_steps
  config.update(num_train_steps=steps, checkpoint_every_steps=steps,
                preview_every_steps=0, log_every_steps=max(steps // 20, 1))
  return config


def steps_per_second(workdir: pathlib.Path) -> float:
  """The mean logged rate of a run's second half (compilation excluded)."""
  rows = [json.loads(line) for line in
          (workdir / "metrics.jsonl").read_text().splitlines()
          if "steps_per_sec" in line]
  rates = [r["steps_per_sec"] for r in rows[len(rows) // 2:]]
  return float(np.mean(rates))


def calibrate(base, out, variant) -> dict[str, float]:
  """Steps per second of every arm, trained in turn in this process."""
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  rates = {}
  for arm in ARMS:
    config = arm_config(arm, base, out, steps=CALIBRATION_STEPS, seed=0,
                        variant=variant)
    config.log_every_steps = 5
    workdir = out / "calibration" / arm
    if not (workdir / "metrics.jsonl").exists():
      loop.train_and_evaluate(config, workdir)
    rates[arm] = steps_per_second(workdir)
  return rates


def as_options(settings: dict) -> dict:
  return {k: v for k, v in settings.items() if k != "score"}


def start_settings(arm: str, gen) -> dict:
  """Where ``arm``'s search starts: MaskGIT at its preset decode."""
  if arm != "maskgit":
    return dict(START[arm])
  return {a.name: getattr(gen.defaults, a.name) for a in AXES["maskgit"]}


def decode_search(arm: str, workdir: pathlib.Path, study, out: pathlib.Path
                  ) -> tuning.Search:
  """``arm``'s coordinate search over ``AXES[arm]`` for the model in
  ``workdir``, scored by ``study``'s development judge on ``TUNE_SAMPLES``
  class-balanced samples; logged to (and resumed from)
  ``out/search_{arm}.jsonl``."""
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  gen = sampling.load(workdir, batch_size=64)

  def develop(settings):
    labels = np.arange(TUNE_SAMPLES) % 10
    images = gen.generate(labels, seed=TUNE_SEED, **as_options(settings))
    return study.develop(images, labels)[1]
  return tuning.logged_search(develop, AXES[arm], start_settings(arm, gen),
                              out / f"search_{arm}.jsonl", rounds=2)


def samples_figure(out: pathlib.Path, workdirs: dict, picks: dict,
                   per_class: int = 2) -> None:
  """``OUT/samples.png``: per arm (top to bottom, ``per_class`` rows each)
  the first ``10 * per_class`` samples its scoring drew from ``workdirs``'
  models at their picks (labels 0..9 per row); ``OUT/samples.json``
  names the rows."""
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  labels = np.arange(10 * per_class) % 10
  rows = []
  for arm, wd in workdirs.items():
    gen = sampling.load(wd, batch_size=64)
    rows.append(np.asarray(gen.generate(
        labels, seed=0, **as_options(picks[arm]["best"]))))
  imageio.write_image(out / "samples.png",
                      imageio.image_grid(np.concatenate(rows), 10))
  (out / "samples.json").write_text(json.dumps(dict(
      rows=[a for a in workdirs for _ in range(per_class)],
      columns="class 0..9", seed=0,
      settings={a: picks[a]["best"] for a in workdirs}), indent=1) + "\n")


def supersede(results: dict, arm: str) -> None:
  """Moves ``arm``'s pick and scored rows to ``results["superseded"]``
  when its search ran over other axes than ``AXES[arm]`` (the space grew):
  the arm is searched and scored again; the old rows stay for the page."""
  old = results["tuning"].get(arm)
  if old is None or set(old["best"]) == {a.name for a in AXES[arm]}:
    return
  keep = [r for r in results["rows"] if r["arm"] != arm]
  results.setdefault("superseded", []).append(dict(
      arm=arm, tuning=results["tuning"].pop(arm),
      rows=[r for r in results["rows"] if r["arm"] == arm]))
  results["rows"] = keep


def reconstruction(codec, study, images, labels) -> dict:
  """The demo judge's accuracy and distance of a tokenizer's test
  reconstructions, with their PSNR."""
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  recon = codec.decode_tokens(codec.encode(images))
  recon_u8 = imageio.to_uint8(recon)
  accuracy, fid = study.report(recon_u8, labels)
  mse = float(np.mean((np.clip(recon, 0, 1) - images / 255.0) ** 2))
  return {"accuracy": accuracy, "fid": fid,
          "psnr": float(10 * np.log10(1.0 / mse))}


def summary(rows: list[dict], samples: int) -> list[dict]:
  """Per arm: mean accuracy and FID over training seeds with their
  uncertainty; each continuous arm's difference to MaskGIT (Welch)."""
  from maskgit_jax.evaluation import uncertainty  # pylint: disable=g-import-not-at-top
  by_arm = {arm: [r for r in rows if r["arm"] == arm] for arm in ARMS}
  table = []
  for arm, runs in by_arm.items():
    if not runs:
      continue
    accuracy = uncertainty.accuracy_over_seeds(
        [r["accuracy"] for r in runs], samples)
    fid = uncertainty.over_seeds([r["fid"] for r in runs])
    entry = dict(arm=arm, seeds=len(runs), accuracy=accuracy.as_dict(),
                 fid=fid.as_dict(),
                 minutes=float(np.mean([r["minutes"] for r in runs])),
                 steps=runs[0]["steps"],
                 ms_per_image=float(np.mean([r["ms_per_image"]
                                             for r in runs])))
    vq = by_arm["maskgit"]
    if arm != "maskgit" and len(vq) > 1 and len(runs) > 1:
      for metric, higher in (("accuracy", True), ("fid", False)):
        diff = uncertainty.difference([r[metric] for r in runs],
                                      [r[metric] for r in vq], paired=False)
        entry[f"{metric}_minus_maskgit"] = diff.as_dict()
        entry[f"{metric}_verdict"] = uncertainty.verdict(
            diff, (arm, "maskgit"), higher_is_better=higher)
    table.append(entry)
  return table


def markdown(table: list[dict], ceiling: dict) -> str:
  from maskgit_jax.evaluation import uncertainty  # pylint: disable=g-import-not-at-top
  fmt = lambda d, digits: uncertainty.Estimate(**d).format(digits)  # pylint: disable=unnecessary-lambda-assignment
  lines = ["| tokenizer | reconstruction accuracy | reconstruction FID | "
           "PSNR (dB) |", "|---|---|---|---|"]
  for name, c in ceiling.items():
    lines.append(f"| {name} | {c['accuracy']:.3f} | {c['fid']:.1f} | "
                 f"{c['psnr']:.1f} |")
  lines += ["", "| arm | seeds | steps | train min | accuracy | FID | "
            "ms / image | vs MaskGIT |", "|---|---|---|---|---|---|---|---|"]
  for e in table:
    verdict = (f"accuracy: {e['accuracy_verdict']}; FID: "
               f"{e['fid_verdict']}" if "fid_verdict" in e else "")
    lines.append(
        f"| {e['arm']} | {e['seeds']} | {e['steps']} | {e['minutes']:.1f} | "
        f"{fmt(e['accuracy'], 3)} | {fmt(e['fid'], 1)} | "
        f"{e['ms_per_image']:.1f} | {verdict} |")
  return "\n".join(lines) + "\n"


def run(args) -> int:
  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling
  from maskgit_jax.data import input_pipeline
  from maskgit_jax.tools import pretokenize
  from scripts.studies import ar_vs_maskgit
  from scripts.studies import judges
  # pylint: enable=g-import-not-at-top
  base, out = pathlib.Path(args.base), pathlib.Path(args.out)
  vae = vae_config(base, args.variant)
  study = judges.Judges(base, vae.image_size)
  results, save = judges.open_results(out, ("tuning",))
  seeds = [int(s) for s in args.seeds.split(",")]

  # 1. the VAE, its latents, both tokenizers' reconstructions
  results["vae_minutes"] = ar_vs_maskgit.train(vae, out / "vae")
  latents = out / "latents_train.npz"
  if not latents.exists():
    pretokenize.pretokenize(str(out / "vae"), "animal_mnist",
                            judges.BASE_SPLIT, vae.image_size, str(latents),
                            progress=lambda _: None)
  if "ceiling" not in results:
    images, labels = input_pipeline.load_animal_mnist()
    test = input_pipeline.animal_mnist_split("test")
    test_images = np.stack([input_pipeline.center_crop(im, vae.image_size)
                            for im in images[test]])
    vq = sampling.Generator.from_checkpoint(base / "maskgit", batch_size=64)
    results["ceiling"] = {
        "VQGAN (base run)": reconstruction(vq, study, test_images,
                                           labels[test]),
        "VAE": reconstruction(_VAECodec(out / "vae"), study, test_images,
                              labels[test])}
    save()
  print(json.dumps(results["ceiling"]), flush=True)

  # 2. equal minutes
  if "rates" not in results:
    results["rates"] = calibrate(base, out, args.variant)
    save()
  rates = results["rates"]
  vq_steps = arm_config("maskgit", base, out, steps=None, seed=0,
                        variant=args.variant).num_train_steps
  steps = {arm: max(int(round(vq_steps * rates[arm] / rates["maskgit"])), 1)
           for arm in ARMS}
  results["steps"] = steps
  save()
  print(json.dumps({"steps_per_second": rates, "steps": steps}), flush=True)

  def workdir(arm, seed):
    if arm == "maskgit" and seed == 0:
      return base / "maskgit"  # the base run's own (same config and seed)
    return out / f"{arm}_s{seed}"

  for arm in args.arms.split(","):
    minutes = {}
    for seed in seeds:  # 3. training
      wd = workdir(arm, seed)
      if wd == base / "maskgit":
        minutes[seed] = json.loads((base / "metrics.json").read_text())[
            "stage_minutes"]["transformer"]
        continue
      minutes[seed] = ar_vs_maskgit.train(
          arm_config(arm, base, out, steps=steps[arm], seed=seed,
                     variant=args.variant), wd)
    supersede(results, arm)
    settings = judges.tuned(  # 4. decode choice on validation
        results, arm, lambda arm=arm: decode_search(
            arm, workdir(arm, seeds[0]), study, out), save)
    for seed in judges.unscored(results["rows"], seeds,
                                arm=arm):  # 5. scoring on test
      gen = sampling.load(workdir(arm, seed), batch_size=64)
      results["rows"].append(dict(
          arm=arm, seed=seed, steps=steps[arm], minutes=minutes[seed],
          settings=settings, **study.score(gen, args.samples, develop=False,
                                           **as_options(settings))))
      print(json.dumps(results["rows"][-1]), flush=True)
      save()
  samples_figure(out, {arm: workdir(arm, seeds[0]) for arm in ARMS
                       if arm in results["tuning"]}, results["tuning"])
  table = summary(results["rows"], args.samples)
  results["summary"] = table
  save()
  text = markdown(table, results["ceiling"])
  (out / "continuous_latents.md").write_text(text)
  print(text)
  return 0


class _VAECodec:
  """A VAE's encode/decode in the shape ``reconstruction`` calls."""

  def __init__(self, workdir: pathlib.Path):
    import jax  # pylint: disable=g-import-not-at-top
    from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
    self.model, self.params = restore.load_tokenizer(workdir)
    self._encode = jax.jit(lambda x: self.model.apply(
        {"params": self.params}, x, method=self.model.encode_to_latents))
    self._decode = jax.jit(lambda z: self.model.apply(
        {"params": self.params}, z, method=self.model.decode))

  def encode(self, images):
    from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
    from maskgit_jax.runtime import batching  # pylint: disable=g-import-not-at-top
    return batching.map_chunks(self._encode, [imageio.to_float(images)], 100)

  def decode_tokens(self, latents):
    from maskgit_jax.runtime import batching  # pylint: disable=g-import-not-at-top
    return np.asarray(batching.map_chunks(self._decode, [latents], 100))


def main(argv=None) -> int:
  from scripts.studies import judges  # pylint: disable=g-import-not-at-top
  parser = judges.study_parser(__doc__, ARMS)
  return run(judges.parse_study_args(parser, ARMS, argv))


if __name__ == "__main__":
  sys.exit(main())
