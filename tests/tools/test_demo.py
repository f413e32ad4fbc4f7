"""make demo's pipeline on the tiny variant (the studies run on the same
base run in tests/studies/test_study_runs.py)."""

import json

import numpy as np
import pytest

from tests import train_helpers as th

pytestmark = pytest.mark.slow  # end to end: in make test, not test-fast


tiny_demo = pytest.fixture(scope="module", name="tiny_demo")(th.tiny_demo_run)


def test_demo_writes_pictures_and_metrics(tiny_demo):
  out, result = tiny_demo
  for name in ("samples.png", "inpaint.png", "reconstructions.png",
               "classifier.npz", "perceptual.npz", "tokens_train.npz"):
    assert (out / name).exists(), name
  saved = json.loads((out / "metrics.json").read_text())
  assert saved == json.loads(json.dumps(result))
  assert list(saved["stage_minutes"]) == [
      "data", "classifier", "perceptual_network", "tokenizer", "tokenize",
      "transformer", "pictures", "metrics"]
  assert sum(saved["stage_minutes"].values()) <= saved["wall_seconds"] / 60 + 0.1
  for key in ("sample_class_accuracy", "classifier_fid", "real_fid_floor",
              "reconstruction_fid", "tokenizer_psnr", "codebook_usage",
              "classifier_test_accuracy", "num_iter", "choice_temperature",
              "wall_seconds", "matmul_f32_gflops"):
    assert np.isfinite(saved[key]), key
  assert 0 <= saved["sample_class_accuracy"] <= 1
  assert 0 < saved["codebook_usage"] <= 1
  assert saved["real_fid_floor"] >= 0 and saved["classifier_fid"] >= 0
  assert (saved["seed"], saved["train_split"]) == (1, "train_minus_validation")


def test_the_training_split_and_seed_reach_every_trained_stage(tiny_demo):
  from maskgit_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import maskgit_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  out, _ = tiny_demo
  fit = input_pipeline.animal_mnist_split("train_minus_validation")
  with np.load(out / "tokens_train.npz") as tokens:
    assert len(tokens["labels"]) == len(fit)  # (tokens: [N, 2, h, w], with the mirror)
  saved = checkpointing.read_config(out / "maskgit")
  assert saved["seed"] == maskgit_animal_mnist.get_config("tiny").seed + 1
  saved = checkpointing.read_config(out / "tokenizer")
  assert saved["data"]["split"] == "train_minus_validation"


def test_demo_refuses_an_unknown_training_split(tmp_path):
  from maskgit_jax.tools import demo  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="'validation'.*train_minus_validation"):
    demo.run(tmp_path / "out", "tiny", train_split="validation")
  assert not (tmp_path / "out").exists()


def test_demo_tokenizer_trains_with_the_perceptual_network(tiny_demo):
  out, _ = tiny_demo
  logged = [json.loads(line) for line in
            (out / "tokenizer" / "metrics.jsonl").read_text().splitlines()]
  assert all(row["perceptual_loss"] > 0 for row in logged
             if "perceptual_loss" in row)
  assert any("perceptual_loss" in row for row in logged)


def test_demo_resumes_instead_of_starting_over(tiny_demo):
  from maskgit_jax.tools import demo  # pylint: disable=g-import-not-at-top
  out, _ = tiny_demo
  before = {p: p.stat().st_mtime for p in (out / "maskgit" /
                                           "checkpoints").iterdir()}
  demo.run(out, "tiny", seed=1, train_split="train_minus_validation")
  after = {p: p.stat().st_mtime for p in (out / "maskgit" /
                                          "checkpoints").iterdir()}
  assert before == after  # nothing retrained, no checkpoint rewritten
