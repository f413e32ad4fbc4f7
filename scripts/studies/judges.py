"""The two judges of every study: one to choose with, one to report with.

A study runs on a *base run*: ``make demo`` trained on the train split
without its validation part::

    python -m maskgit_jax.tools.demo --out runs/base \
        --train_split train_minus_validation

* the **development judge** (:func:`dev_classifier`: the demo judge's
  recipe trained on ``train_minus_validation`` with another seed, cached in
  the base run) against the **validation** split: every choice a study
  makes (decode settings, training levers, learning rates, steps);
* the **reporting judge** (the demo's classifier, ``classifier.npz``)
  against the **test** split: the numbers a page reports, never a choice.

The development judge is the reporting judge's twin so that a choice made
on it moves the reported numbers the same way: the base run's perceptual
network, the development judge before 2026-12-06, preferred decode
settings that the reporting judge scored 3-15 FID worse and ranked
learning rates the other way round (``docs/studies/ar_vs_maskgit.md``). :class:`Judges` refuses a base run
whose networks saw the validation split (an older demo run, or one trained
on all of "train").
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Callable, Sequence

import numpy as np

from maskgit_jax.data import input_pipeline
from maskgit_jax.evaluation import classifier as classifier_lib
from maskgit_jax.evaluation import metrics

BASE_SPLIT = "train_minus_validation"
BASE_COMMAND = ("python -m maskgit_jax.tools.demo --out DIR "
                f"--train_split {BASE_SPLIT}")


DEV_CLASSIFIER = "dev_classifier.npz"
DEV_SEED = 1  # the reporting judge's recipe trains with seed 0


def dev_classifier(run: pathlib.Path) -> classifier_lib.Classifier:
  """The development judge of base run ``run``: ``classifier.train`` (the
  demo judge's recipe: 1,500 steps, 20 for a tiny run) on
  ``train_minus_validation`` with seed ``DEV_SEED``; trained once, then
  read from ``run / DEV_CLASSIFIER``."""
  path = pathlib.Path(run) / DEV_CLASSIFIER
  if path.exists():
    return classifier_lib.Classifier.load(path)
  variant = json.loads((pathlib.Path(run) / "metrics.json").read_text()).get(
      "variant", "default")
  images, labels = input_pipeline.load_animal_mnist()
  fit = input_pipeline.animal_mnist_split(BASE_SPLIT)
  judge = classifier_lib.train(images[fit], labels[fit], 10,
                               steps=20 if variant == "tiny" else 1500,
                               seed=DEV_SEED, log=None)
  judge.save(path)
  return judge


def check_base(run: pathlib.Path) -> None:
  """Raises ValueError unless ``run`` is a finished base run (see above)."""
  path = run / "metrics.json"
  if not path.exists():
    raise ValueError(f"{run} is not a finished demo run (no metrics.json); "
                     f"make a base run with: {BASE_COMMAND}")
  split = json.loads(path.read_text()).get("train_split", "train")
  if split != BASE_SPLIT:
    raise ValueError(
        f"{run} trained on {split!r}, which holds the validation split the "
        f"study chooses on; make a base run with: {BASE_COMMAND}")


class Judges:
  """Both judges of a base run with their reference statistics.

  ``develop`` and ``report`` take uint8 samples ``[n, S, S, 3]`` (``S`` the
  ``image_size`` the references are resized to) and the
  labels they were drawn for ``[n]``; each returns ``(class accuracy,
  Frechet distance)``: against validation in the development judge, and
  against test in the reporting judge.
  """

  def __init__(self, run: pathlib.Path, image_size: int = 32):
    run = pathlib.Path(run)
    check_base(run)
    images, _ = input_pipeline.load_animal_mnist()

    def split(name):  # at the samples' size (the tiny variant's 16 px)
      return np.stack([input_pipeline.center_crop(im, image_size) for im in
                       images[input_pipeline.animal_mnist_split(name)]])
    validation, test = split("validation"), split("test")
    self.dev = dev_classifier(run)
    self.judge = classifier_lib.Classifier.load(run / "classifier.npz")
    self.dev_reference = metrics.Statistics.of(self.dev.features(validation))
    self.reference = metrics.Statistics.of(self.judge.features(test))

  def develop(self, images: np.ndarray, labels: np.ndarray
              ) -> tuple[float, float]:
    judged = self.dev.outputs(images)
    return metrics.class_scores(judged["logits"], judged["pool"], labels,
                                self.dev_reference)

  def score(self, gen, num_samples: int, *, seed: int = 0,
            develop: bool = True, **options) -> dict:
    """``num_samples`` class-balanced samples of generator ``gen`` (labels
    ``i % 10``, sampling seed ``seed``, decode ``options``), timed and
    scored: ``accuracy`` and ``fid`` by the reporting judge (test),
    ``dev_accuracy`` and ``dev_fd`` by the development judge (validation;
    left out with ``develop=False``) and ``ms_per_image``."""
    labels = np.arange(num_samples) % 10
    start = time.perf_counter()
    images = gen.generate(labels, seed=seed, **options)
    seconds = time.perf_counter() - start
    accuracy, fid = self.report(images, labels)
    scores = dict(accuracy=accuracy, fid=fid)
    if develop:
      scores["dev_accuracy"], scores["dev_fd"] = self.develop(images, labels)
    scores["ms_per_image"] = 1e3 * seconds / num_samples
    return scores

  def report(self, images: np.ndarray, labels: np.ndarray
             ) -> tuple[float, float]:
    judged = self.judge.outputs(images)
    return metrics.class_scores(judged["logits"], judged["pool"], labels,
                                self.reference)


def open_results(out: pathlib.Path, sections: Sequence[str] = ()
                 ) -> tuple[dict, Callable[[], None]]:
  """``(results, save)``: ``OUT/results.json`` as far as an earlier run got
  (``OUT`` made if missing), with a dict for each of ``sections`` and a
  ``rows`` list, and the function that writes it back."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  for key in sections:
    results.setdefault(key, {})
  results.setdefault("rows", [])

  def save() -> None:
    path.write_text(json.dumps(results, indent=1) + "\n")
  return results, save


def tuned(results: dict, key: str, search: Callable[[], object],
          save: Callable[[], None]) -> dict:
  """The picked settings ``results["tuning"][key]["best"]``, running
  ``search()`` (a :class:`scripts.studies.tuning.Search`) and saving its
  record first when an earlier run has not."""
  if key not in results["tuning"]:
    results["tuning"][key] = search().record()
    save()
  return results["tuning"][key]["best"]


def unscored(rows: Sequence[dict], seeds: Sequence[int], **key) -> list[int]:
  """The ``seeds`` with no scored row of ``key``'s values in ``rows``."""
  return [s for s in seeds
          if not any(all(r.get(k) == v for k, v in dict(key, seed=s).items())
                     for r in rows)]


def study_parser(doc: str, arms: Sequence[str]) -> argparse.ArgumentParser:
  """The flags every base-run study takes: ``--base``, ``--out``,
  ``--arms`` (some of ``arms``), ``--seeds``, ``--samples``, ``--variant``."""
  parser = argparse.ArgumentParser(description=doc.split("\n")[0])
  parser.add_argument("--base", required=True,
                      help="a base run (scripts/studies/judges.py)")
  parser.add_argument("--out", required=True)
  parser.add_argument("--arms", default=",".join(arms))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--samples", type=int, default=1000)
  parser.add_argument("--variant", default="default",
                      help="the presets' variant (tiny: the tests' base run)")
  return parser


def parse_study_args(parser: argparse.ArgumentParser, arms: Sequence[str],
                     argv) -> argparse.Namespace:
  """Parses ``argv``; exits with the parser's error for unknown arms or a
  base run the study cannot use; splits the host CPU as make demo trains
  (before JAX starts)."""
  args = parser.parse_args(argv)
  unknown = sorted(set(args.arms.split(",")) - set(arms))
  if unknown:
    parser.error(f"unknown arms {unknown}; expected some of {list(arms)}")
  try:
    check_base(pathlib.Path(args.base))
  except ValueError as e:
    parser.error(str(e))
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  sharding.split_host_cpu()
  return args
