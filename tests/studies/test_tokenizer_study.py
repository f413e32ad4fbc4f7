"""The stage-1 recipe study's pieces: a GAN recipe's cost is checked without
training (the study end to end: tests/studies/test_study_runs.py)."""

import pytest


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
