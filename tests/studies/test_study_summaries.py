"""The studies' tables and verdicts from given rows (no training)."""

import numpy as np
import pytest


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


def test_a_pick_from_a_smaller_search_space_is_superseded_not_lost():
  from scripts.studies import continuous_latents as study  # pylint: disable=g-import-not-at-top
  current = {a.name: 1 for a in study.AXES["diffusion"]}
  older = {k: v for k, v in current.items() if k != "clip_x0"}
  rows = [dict(arm="diffusion", seed=0), dict(arm="maskgit", seed=0)]
  results = {"tuning": {"diffusion": {"best": older},
                        "maskgit": {"best": {"cfg_scale": 1.0}}},
             "rows": list(rows)}
  study.supersede(results, "diffusion")
  assert "diffusion" not in results["tuning"]
  assert results["rows"] == rows[1:]
  assert results["superseded"] == [dict(
      arm="diffusion", tuning={"best": older}, rows=rows[:1])]
  results["tuning"]["diffusion"] = {"best": current}
  results["rows"].append(rows[0])
  study.supersede(results, "diffusion")  # the current space: untouched
  assert results["tuning"]["diffusion"] == {"best": current}
  assert len(results["rows"]) == 2 and len(results["superseded"]) == 1


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


def test_decode_check_reads_named_settings_and_averages_seeds():
  from scripts.studies import decode_check  # pylint: disable=g-import-not-at-top
  assert decode_check.parse_settings(
      ["preset={}", 'tuned={"cfg_scale": 1.0, "num_iter": 64}']) == {
          "preset": {}, "tuned": {"cfg_scale": 1.0, "num_iter": 64}}
  for bad in ("preset", "=", "x=[1]", "x={oops"):
    with pytest.raises(ValueError, match="--settings"):
      decode_check.parse_settings([bad])
  rows = [dict(model="m", setting=s, seed=seed, accuracy=a + 0.01 * seed,
               fid=f + seed, dev_accuracy=a, dev_fd=1.0, ms_per_image=5.0)
          for s, a, f in (("preset", 0.9, 40.0), ("tuned", 0.8, 30.0))
          for seed in range(2)]
  table = decode_check.markdown(rows).splitlines()
  assert table[2] == ("| m | preset | 2 | 0.905 ± 0.005 | 40.5 ± 0.5 | "
                      "0.900 ± 0.000 | 1.00 ± 0.00 | 5 |")
  assert table[3].startswith("| m | tuned | 2 | 0.805 ± 0.005 | 30.5 ± 0.5")


def test_decode_check_refuses_a_missing_model(tmp_path, capsys):
  from scripts.studies import decode_check  # pylint: disable=g-import-not-at-top
  assert decode_check.main([
      "--base", str(tmp_path), "--models", str(tmp_path / "nope"),
      "--settings", "preset={}", "--out", str(tmp_path / "out")]) == 2
  assert "no such workdir" in capsys.readouterr().err
  assert not (tmp_path / "out").exists()


def test_a_cell_re_screened_at_its_budget_keeps_only_its_picked_rate():
  from scripts.studies import ar_vs_maskgit as study  # pylint: disable=g-import-not-at-top
  results = {
      "learning_rate": {"maskgit 1450": {"tried": {}, "picked": 3e-3},
                        "ar 1450": {"tried": {}}},  # screen unfinished
      "rows": [dict(arm="maskgit", budget=1450, learning_rate=r, seed=0)
               for r in (1e-3, 3e-3)] + [
                   dict(arm="ar", budget=1450, learning_rate=1e-3, seed=0)]}
  assert study.current_rows(results) == [results["rows"][1]]
