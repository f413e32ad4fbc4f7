"""A study's judges: a base run must have held the validation split out."""

import json

import numpy as np
import pytest

from scripts.studies import judges


@pytest.mark.parametrize("metrics, message", [
    (None, "no metrics.json"),
    ({"variant": "default"}, "trained on 'train'"),  # before the option
    ({"train_split": "train"}, "trained on 'train'"),
])
def test_a_run_that_saw_the_validation_split_is_refused(tmp_path, metrics,
                                                        message):
  if metrics is not None:
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
  with pytest.raises(ValueError, match=message) as error:
    judges.Judges(tmp_path)
  assert "--train_split train_minus_validation" in str(error.value)


def test_a_base_run_passes_the_check(tmp_path):
  (tmp_path / "metrics.json").write_text(
      json.dumps({"train_split": "train_minus_validation"}))
  judges.check_base(tmp_path)  # raises on failure


def test_results_resume_tuning_runs_once_and_unscored_seeds(tmp_path):
  from scripts.studies import tuning  # pylint: disable=g-import-not-at-top
  out = tmp_path / "new"
  results, save = judges.open_results(out, ("tuning",))
  assert results == {"tuning": {}, "rows": []}
  calls = []

  def search():
    calls.append(1)
    return tuning.Search(best={"w": 2}, score=0.5, tried=[], edges={})
  assert judges.tuned(results, "arm 8", search, save) == {"w": 2}
  results["rows"].append({"arm": "a", "seed": 1, "budget": 8})
  save()
  again, _ = judges.open_results(out, ("tuning", "probes"))
  assert again["tuning"]["arm 8"]["score"] == 0.5 and again["probes"] == {}
  assert judges.tuned(again, "arm 8", search, save) == {"w": 2}
  assert calls == [1]  # the saved pick is used, the search not run again
  assert judges.unscored(again["rows"], [0, 1, 2], arm="a") == [0, 2]
  assert judges.unscored(again["rows"], [1], arm="a", budget=9) == [1]


def test_the_development_judge_is_trained_once_on_the_base_split(
    tmp_path, monkeypatch):
  from maskgit_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from maskgit_jax.evaluation import classifier  # pylint: disable=g-import-not-at-top
  (tmp_path / "metrics.json").write_text(json.dumps(
      {"train_split": judges.BASE_SPLIT, "variant": "tiny"}))
  seen = []
  train = classifier.train
  monkeypatch.setattr(classifier, "train", lambda images, labels, n, **kw: (
      seen.append((len(images), kw["seed"], kw["steps"])) or
      train(images, labels, n, **kw)))
  first = judges.dev_classifier(tmp_path)
  fit = input_pipeline.animal_mnist_split(judges.BASE_SPLIT)
  assert seen == [(len(fit), judges.DEV_SEED, 20)]  # never the validation
  again = judges.dev_classifier(tmp_path)  # read back, not retrained
  assert len(seen) == 1
  images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3),
                                             dtype=np.uint8)
  np.testing.assert_array_equal(first.features(images), again.features(images))
