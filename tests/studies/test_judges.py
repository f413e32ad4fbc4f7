"""A study's judges: a base run must have held the validation split out."""

import json

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
