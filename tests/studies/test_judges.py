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
