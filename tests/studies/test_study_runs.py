"""Every study script end to end on tiny runs: ``make test-studies`` (and
CI) runs them; ``make test`` leaves them out (a study is a script whose
results page names its command; its pieces are tested in the other files
of this folder).

Most run on a tiny base run (``make demo``'s tiny variant with the
validation split held out); the tokenizer study trains its own recipes: a
plain one with two seeds (the seed spread) and one with the perceptual
network (the quantizer variants train in test_quantizers.py, the GAN's
phases in test_training.py; to the study a recipe is a set of config
overrides, whatever they are).
"""

import json

import numpy as np
import pytest

from maskgit_jax.data import input_pipeline
from maskgit_jax.evaluation import classifier as classifier_lib
from tests import train_helpers as th

pytestmark = pytest.mark.study
tiny_demo = pytest.fixture(scope="module", name="tiny_demo")(th.tiny_demo_run)


def test_schedule_study_writes_table_and_plot(tiny_demo, tmp_path):
  from scripts.studies import schedule_study  # pylint: disable=g-import-not-at-top
  out, _ = tiny_demo
  rows = schedule_study.study(out, 20, schedules=("cosine", "linear"),
                              steps=(2, 4))
  assert [(r["schedule"], r["steps"]) for r in rows] == [
      ("cosine", 2), ("cosine", 4), ("linear", 2), ("linear", 4)]
  schedule_study.write(rows, tmp_path, "test")
  table = (tmp_path / "schedule_study.md").read_text()
  assert "| cosine |" in table and "T=4" in table
  assert (tmp_path / "schedule_study.png").stat().st_size > 1000

  seeded = schedule_study.study(out, 20, schedules=("cosine",), steps=(2,),
                                seeds=(0, 1))
  assert [r["seed"] for r in seeded] == [0, 1]
  schedule_study.write(seeded, tmp_path / "seeds", "test")
  table = (tmp_path / "seeds" / "schedule_study.md").read_text()
  assert "mean over 2 seeds" in table and " +- " in table


def test_ar_vs_maskgit_screens_tunes_on_validation_and_scores_seeds(
    tiny_demo, tmp_path, monkeypatch):
  """The issue-28 study end to end on the tiny base run: two arms, one
  budget, two training seeds, a short tuning grid."""
  from scripts.studies import ar_vs_maskgit as study  # pylint: disable=g-import-not-at-top
  from scripts.studies import tuning  # pylint: disable=g-import-not-at-top
  base, _ = tiny_demo
  small = (tuning.Axis("temperature", (0.8, 1.0)),)
  monkeypatch.setattr(study, "AXES", {"maskgit": small + (
      tuning.Axis("num_iter", (2, 4), tuning.scaled(2, 2, 8)),), "ar": small})
  monkeypatch.setattr(study, "TUNE_SAMPLES", 20)
  out = tmp_path / "study"
  args = ["--base", str(base), "--out", str(out), "--variant", "tiny",
          "--arms", "maskgit_matched,ar", "--budgets", "4", "--seeds", "0,1",
          "--learning_rates", "1e-3", "--samples", "20"]
  assert study.main(args) == 0
  results = json.loads((out / "results.json").read_text())
  assert {r["arm"] for r in results["rows"]} == {"maskgit_matched", "ar"}
  assert sorted(r["seed"] for r in results["rows"]) == [0, 0, 1, 1]
  assert results["learning_rate"]["ar 4"]["picked"] == 1e-3  # per budget
  tuned = results["tuning"]["maskgit_matched 4 lr0.001"]
  assert set(tuned["best"]) >= {"temperature", "num_iter", "cfg_scale"}
  assert min(r["score"] for r in tuned["tried"]) == tuned["score"]
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  saved = checkpointing.read_config(out / "maskgit_matched_lr0.001_4_s1")
  assert saved["model"]["norm"] == "pre" and saved["seed"] == 1
  verdict = [r for r in results["summary"] if r["arm"] ==
             "maskgit_matched vs ar"]
  assert len(verdict) == 1 and "fid" in verdict[0]
  assert "maskgit_matched vs ar" in (out / "ar_vs_maskgit.md").read_text()
  rows = len(results["rows"])
  assert study.main(args) == 0  # a re-run keeps every finished piece
  assert len(json.loads((out / "results.json").read_text())["rows"]) == rows


def test_continuous_latents_trains_at_equal_minutes_and_scores_seeds(
    tiny_demo, tmp_path, monkeypatch):
  """The issue-29 study end to end on the tiny base run: the VAE, the
  calibration, every arm at one training seed, a short search (the seed
  summary: the test below)."""
  from scripts.studies import continuous_latents as study  # pylint: disable=g-import-not-at-top
  from scripts.studies import tuning  # pylint: disable=g-import-not-at-top
  base, _ = tiny_demo
  few = tuning.Axis("num_iter", (2, 4), tuning.scaled(2, 2, 8))
  monkeypatch.setattr(study, "AXES", {
      "maskgit": (few,), "diffusion": (few, tuning.Axis("steps", (3, 5))),
      "mixture": (few, tuning.Axis("order", ("random", "density")))})
  monkeypatch.setattr(study, "START", {
      "diffusion": {"num_iter": 2, "steps": 3},
      "mixture": {"num_iter": 2, "order": "density"}})
  monkeypatch.setattr(study, "TUNE_SAMPLES", 20)
  monkeypatch.setattr(study, "CALIBRATION_STEPS", 6)
  out = tmp_path / "study"
  args = ["--base", str(base), "--out", str(out), "--variant", "tiny",
          "--seeds", "0", "--samples", "20"]
  assert study.main(args) == 0
  results = json.loads((out / "results.json").read_text())
  assert set(results["ceiling"]) == {"VQGAN (base run)", "VAE"}
  assert set(results["rates"]) == set(study.ARMS)
  assert sorted((r["arm"], r["seed"]) for r in results["rows"]) == sorted(
      (arm, 0) for arm in study.ARMS)
  for arm in ("diffusion", "mixture"):  # its steps take MaskGIT's minutes
    want = results["steps"]["maskgit"] * results["rates"][arm] / results[
        "rates"]["maskgit"]
    assert abs(results["steps"][arm] - want) <= 0.5 + 1e-9 or (
        results["steps"][arm] == 1 and want < 1)
  tuned = results["tuning"]["mixture"]
  assert min(r["score"] for r in tuned["tried"]) == tuned["score"]
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  saved = checkpointing.read_config(out / "diffusion_s0")
  assert saved["stage"] == "continuous" and saved["continuous"]["head"] == (
      "diffusion")
  table = (out / "continuous_latents.md").read_text()
  assert "| VAE |" in table and "| mixture | 1 |" in table
  figure = json.loads((out / "samples.json").read_text())
  assert figure["rows"] == [a for a in study.ARMS for _ in range(2)]
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  picture = imageio.read_image(out / "samples.png")
  assert picture.shape[0] == 6 * picture.shape[1] // 10
  rows = len(results["rows"])
  assert study.main(args) == 0  # a re-run keeps every finished piece
  assert len(json.loads((out / "results.json").read_text())["rows"]) == rows


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


def test_mage_equal_terms_screens_mage_c_and_probes_both_poolings(
    tiny_demo, tmp_path, monkeypatch):
  """The MAGE comparison end to end on the tiny base run: MAGE-C (its
  constants screened on validation) against the unconditional MaskGIT."""
  from scripts.studies import ar_vs_maskgit  # pylint: disable=g-import-not-at-top
  from scripts.studies import mage_equal_terms as study  # pylint: disable=g-import-not-at-top
  from scripts.studies import tuning  # pylint: disable=g-import-not-at-top
  base, _ = tiny_demo
  monkeypatch.setattr(study, "AXES", (
      tuning.Axis("num_iter", (2, 4), tuning.scaled(2, 2, 8)),))
  monkeypatch.setattr(ar_vs_maskgit, "TUNE_SAMPLES", 20)
  out = tmp_path / "study"
  args = ["--base", str(base), "--out", str(out), "--variant", "tiny",
          "--arms", "mage_c,maskgit_uncond,maskgit_null", "--steps", "4",
          "--seeds", "0,1", "--learning_rates", "1e-3", "--samples", "20",
          "--contrastive_grid", "0.1:0.1,0.3:0.2", "--probe_epochs", "1"]
  assert study.main(args) == 0
  results = json.loads((out / "results.json").read_text())
  arms = ("mage_c", "maskgit_uncond", "maskgit_null")
  assert set(results["contrastive"]["tried"]) == {
      json.dumps(dict(contrastive_temperature=t, contrastive_weight=w),
                 sort_keys=True) for w, t in ((0.1, 0.1), (0.3, 0.2))}
  picked = results["contrastive"]["picked"]
  assert results["contrastive"]["tried"][json.dumps(
      picked, sort_keys=True)] == max(results["contrastive"]["tried"].values())
  assert {(r["arm"], r["seed"]) for r in results["rows"]} == {
      (a, s) for a in arms for s in (0, 1)}
  assert all(0 <= r["tv"] < 1 and sum(r["histogram"]) == 20
             for r in results["rows"])
  for name in arms + ("pixels", "tokenizer"):
    for pooling in ("mean", "flatten"):
      cell = results["probes"][name][pooling]
      assert len(cell) == (2 if name in arms else 1)
      assert all(0 <= v <= 1 for v in cell.values())
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  saved = checkpointing.read_config(
      study.contrastive_workdir(out, picked, 1))
  assert saved["mage"]["contrastive_weight"] == picked["contrastive_weight"]
  uncond = checkpointing.read_config(out / "maskgit_uncond_lr0.001_s1")
  assert uncond["masking"]["unconditional"] and uncond["model"]["norm"] == "pre"
  null = checkpointing.read_config(out / "maskgit_null_lr0.001_s1")
  assert null["masking"]["label_dropout"] > 0 and null["model"]["num_classes"] > 1
  table = (out / "mage_equal_terms.md").read_text()
  assert "| maskgit_uncond | 2 |" in table and "| tokenizer |" in table
  rows = len(results["rows"])
  assert study.main(args) == 0  # a re-run keeps every finished piece
  assert len(json.loads((out / "results.json").read_text())["rows"]) == rows


def test_total_variation_from_uniform():
  from scripts.studies import mage_equal_terms as study  # pylint: disable=g-import-not-at-top
  assert study.total_variation([5] * 10) == 0.0
  assert study.total_variation([10] + [0] * 9) == pytest.approx(0.9)
  assert study.contrastive_grid("0.1:0.2,0.3:0.1") == [
      dict(contrastive_weight=0.1, contrastive_temperature=0.2),
      dict(contrastive_weight=0.3, contrastive_temperature=0.1)]
