"""make demo's pipeline and the schedule study, on the tiny variant."""

import json

import numpy as np
import pytest

from tests import train_helpers as th

pytestmark = pytest.mark.slow  # end to end: in make test, not test-fast


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
  from maskgit_jax.tools import demo  # pylint: disable=g-import-not-at-top
  out = tmp_path_factory.mktemp("demo")
  # A study's base run: another training seed, the validation split held out.
  result = demo.run(out, "tiny", seed=1, train_split="train_minus_validation")
  return out, result


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
  assert results["learning_rate"]["ar"]["picked"] == 1e-3
  tuned = results["tuning"]["maskgit_matched 4"]
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
  rows = len(results["rows"])
  assert study.main(args) == 0  # a re-run keeps every finished piece
  assert len(json.loads((out / "results.json").read_text())["rows"]) == rows


def test_continuous_latents_summary_compares_each_head_with_maskgit():
  from scripts.studies import continuous_latents as study  # pylint: disable=g-import-not-at-top
  rows = [dict(arm=arm, seed=seed, steps=10, minutes=1.0, ms_per_image=2.0,
               accuracy=acc + 0.01 * seed, fid=fid + seed)
          for arm, acc, fid in (("maskgit", 0.6, 40.0),
                                ("diffusion", 0.9, 10.0),
                                ("mixture", 0.6, 40.0))
          for seed in range(3)]
  table = {e["arm"]: e for e in study.summary(rows, 1000)}
  assert "fid_verdict" not in table["maskgit"]
  assert table["diffusion"]["fid"]["mean"] == pytest.approx(11.0)
  assert table["diffusion"]["fid_minus_maskgit"]["mean"] == pytest.approx(
      -30.0)
  assert table["diffusion"]["fid_verdict"].startswith("diffusion better")
  assert table["diffusion"]["accuracy_verdict"].startswith("diffusion better")
  assert table["mixture"]["fid_verdict"].startswith("not resolved")


def test_schedule_study_averages_seeds_per_cell():
  from scripts.studies import schedule_study  # pylint: disable=g-import-not-at-top
  fids, accs = [10.0, 12.0, 17.0], [0.5, 0.6, 0.7]
  rows = [dict(schedule="cosine", steps=8, seed=i, classifier_fid=f,
               class_accuracy=a) for i, (f, a) in enumerate(zip(fids, accs))]
  rows.append(dict(schedule="linear", steps=8, seed=0, classifier_fid=3.0,
                   class_accuracy=0.1))
  cells = schedule_study._cells(rows)  # pylint: disable=protected-access
  np.testing.assert_allclose(cells["cosine", 8]["classifier_fid"], 13.0)
  np.testing.assert_allclose(cells["cosine", 8]["fid_std"],
                             np.std(fids, ddof=1))
  np.testing.assert_allclose(cells["cosine", 8]["class_accuracy"], 0.6)
  assert cells["linear", 8]["fid_std"] == 0.0
  assert cells["linear", 8]["num_seeds"] == 1


@pytest.mark.parametrize("args, message", [
    (["--steps", "4,x"], "--steps must be comma-separated integers"),
    (["--steps", "0"], "--steps must be positive"),
    (["--schedules", "cosine,zigzag"], "unknown zigzag"),
])
def test_schedule_study_rejects_bad_flags(args, message, capsys):
  from scripts.studies import schedule_study  # pylint: disable=g-import-not-at-top
  assert schedule_study.main(["--run", "nowhere"] + args) == 2
  assert message in capsys.readouterr().err
