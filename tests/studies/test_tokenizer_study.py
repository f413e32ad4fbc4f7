"""The stage-1 recipe study runs end to end on the tiny configs: a plain
recipe with two seeds (the seed spread) and one with the perceptual network
(the quantizer variants train in test_quantizers.py, the GAN's phases in
test_training.py; to the study a recipe is a set of config overrides,
whatever they are). A GAN recipe's cost is checked without training."""

import json

import numpy as np
import pytest

from maskgit_jax.data import input_pipeline
from maskgit_jax.evaluation import classifier as classifier_lib
from tests import train_helpers as th

pytestmark = pytest.mark.slow  # end to end: in make test, not test-fast


def test_tokenizer_study_runs_recipes_and_seeds(tmp_path):
  from scripts.studies import tokenizer_study  # pylint: disable=g-import-not-at-top
  images, labels = input_pipeline.load_animal_mnist()
  idx = input_pipeline.animal_mnist_split("train")[:256]
  small = images[idx][:, 8:24, 8:24]
  judge = classifier_lib.train(small, labels[idx], 10, steps=5, log=None)
  judge.save(tmp_path / "judge.npz")
  out = tmp_path / "study"
  args = ["--out", str(out), "--minutes", "0.01", "--variant", "tiny",
          "--recipes", "l2,l2+perceptual",
          "--more_seeds", "l2", "--seeds", "2", "--perceptual_steps", "5",
          "--num_reference", "64", "--classifier", str(tmp_path / "judge.npz")]
  assert tokenizer_study.main(args) == 0
  result = json.loads((out / "tokenizer_study.json").read_text())
  assert [r["recipe"] for r in result["runs"]] == [
      "l2", "l2", "l2+perceptual"]
  for row in result["runs"]:
    assert np.isfinite(row["psnr"]) and row["steps"] >= 2
    assert 0 < row["codebook_usage"] <= 1 and row["perplexity"] >= 1
  l2 = result["table"][0]
  assert l2["seeds"] == 2 and l2["psnr_std"] is not None
  assert "| l2 | 2 |" in (out / "tokenizer_study.md").read_text()
  bad = args[:args.index("--recipes") + 1] + ["nope"] + args[
      args.index("--recipes") + 2:]
  assert tokenizer_study.main(bad) == 2


def test_a_gan_recipe_costs_its_share_of_each_phase(monkeypatch):
  """``s * off + (1 - s) * on`` for a GAN that starts at share ``s``."""
  from scripts.studies import tokenizer_study  # pylint: disable=g-import-not-at-top
  measured = []

  def fake_cost(config, batch):
    del batch
    measured.append(config.losses.discriminator_start_step)
    return 1.0 if config.losses.discriminator_start_step else 3.0
  monkeypatch.setattr(tokenizer_study, "seconds_per_step", fake_cost)
  share = tokenizer_study.RECIPES["l2+gan"]["gan_start"]
  cost = tokenizer_study.recipe_cost("l2+gan", {}, "", "tiny")
  assert cost == pytest.approx(share * 1.0 + (1 - share) * 3.0)
  assert measured == [10**9, 0]  # off, then on
  assert tokenizer_study.recipe_cost("l2", {}, "", "tiny") == 1.0
