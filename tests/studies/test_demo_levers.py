"""scripts/studies/demo_levers.py: lever configs and the summary table."""

import json
import pathlib

import numpy as np
import pytest

from tests import train_helpers as th

from scripts.studies import demo_levers


def test_lever_config_applies_dotted_overrides_and_wires_the_base():
  base = pathlib.Path("/runs/base")
  config = demo_levers.lever_config(
      base, {"optimizer.learning_rate": 5e-4, "batch_size": 32,
             "masking.schedule": "arccos"}, steps=123, seed=4)
  assert config.optimizer.learning_rate == 5e-4
  assert config.batch_size == 32 and config.masking.schedule == "arccos"
  assert config.num_train_steps == 123 and config.seed == 4
  assert config.tokenizer_checkpoint == str(base / "tokenizer")
  assert config.data.name == f"tokens:{base / 'tokens_train.npz'}"
  untouched = demo_levers.lever_config(base, {}, steps=123, seed=4)
  assert untouched.optimizer.learning_rate != 5e-4


def test_every_lever_names_existing_config_fields():
  for name, overrides in demo_levers.LEVERS.items():
    config = demo_levers.lever_config(pathlib.Path("b"), overrides, 10, 0)
    for key, value in overrides.items():
      section = config
      for part in key.split("."):
        section = section[part]
      assert section == value, (name, key)


def test_settings_parse_as_python_literals():
  assert demo_levers.parse_settings(
      ["optimizer.learning_rate=1e-3", "batch_size=32",
       "masking.schedule=arccos"]) == {
           "optimizer.learning_rate": 1e-3, "batch_size": 32,
           "masking.schedule": "arccos"}
  with pytest.raises(ValueError, match="key=value, got 'lr'"):
    demo_levers.parse_settings(["lr"])


def test_markdown_reports_mean_and_seed_spread():
  rows = [dict(lever="a", seed=s, steps=10, heldout_loss=l, dev_accuracy=a,
               dev_fid=f)
          for s, (l, a, f) in enumerate([(2.0, 0.5, 3.0), (2.2, 0.7, 5.0)])]
  rows.append(dict(lever="b", seed=0, steps=20, heldout_loss=1.5,
                   dev_accuracy=0.9, dev_fid=1.0))
  table = demo_levers.markdown(rows).splitlines()
  se = lambda v: np.std(v, ddof=1) / np.sqrt(len(v))  # pylint: disable=unnecessary-lambda-assignment
  assert table[2] == (f"| a | 2 | 10 | 2.100 ± {se([2.0, 2.2]):.3f} | "
                      f"0.600 ± {se([0.5, 0.7]):.3f} | 4.00 ± "
                      f"{se([3.0, 5.0]):.2f} |")
  assert table[3] == "| b | 1 | 20 | 1.500 | 0.900 | 1.00 |"


def test_checkpoint_scores_cover_every_saved_step_in_order(tmp_path,
                                                          monkeypatch):
  for name in ("800", "400", "1200", "tmp-123"):
    (tmp_path / "run" / "checkpoints" / name).mkdir(parents=True)
  seen = []

  def fake_scores(workdir, study, step=None, **options):
    seen.append((workdir, step, options))
    return {"dev_accuracy": step / 1000, "dev_fid": 1.0}

  monkeypatch.setattr(demo_levers, "sample_scores", fake_scores)
  demo_levers.checkpoint_scores(tmp_path / "run", None, tmp_path)
  rows = json.loads((tmp_path / "checkpoints.json").read_text())
  assert [r["step"] for r in rows] == [400, 800, 1200]
  assert [r["dev_accuracy"] for r in rows] == [0.4, 0.8, 1.2]
  assert all(w == tmp_path / "run" and o == {} for w, _, o in seen)
