"""The studies' coordinate search: finds the optimum, grows past edges."""

import pathlib

import hypothesis
from hypothesis import strategies as st
import pytest

from scripts.studies import tuning

AXES = (tuning.Axis("w", (0.0, 1.0, 2.0, 3.0), tuning.scaled(2.0, 0.0, 64.0)),
        tuning.Axis("t", (2.0, 4.5, 6.0), tuning.scaled(1.5, 0.5, 50.0)))


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(w=st.sampled_from([0.0, 1.0, 2.0, 3.0, 6.0, 12.0]),
                  t=st.sampled_from([2.0, 4.5, 6.0, 9.0, 13.5]))
def test_finds_the_optimum_of_a_separable_bowl_even_past_the_grid(w, t):
  calls = []

  def evaluate(s):
    calls.append(s)
    return (s["w"] - w) ** 2 + (s["t"] - t) ** 2
  search = tuning.coordinate_search(evaluate, AXES, {"w": 2.0, "t": 4.5,
                                                     "T": 8}, log=None)
  assert (search.best["w"], search.best["t"]) == (w, t)
  assert search.best["T"] == 8 and search.score == 0.0
  keys = [tuple(sorted(c.items())) for c in calls]
  assert len(keys) == len(set(keys))  # each setting evaluated once
  assert len(search.tried) == len(calls)
  assert "w" in search.edges or w not in (0.0,)


def test_an_optimum_at_a_bound_is_reported_as_an_edge():
  search = tuning.coordinate_search(
      lambda s: s["w"] + (s["t"] - 4.5) ** 2, AXES, {"w": 2.0, "t": 4.5},
      log=None)
  assert search.best == {"w": 0.0, "t": 4.5}
  assert search.edges == {"w": 0.0}  # guidance cannot go below 0


def test_growing_stops_at_the_limit_and_reports_the_edge():
  search = tuning.coordinate_search(lambda s: -s["w"], AXES[:1], {"w": 1.0},
                                    max_grow=2, log=None)
  assert search.best == {"w": 12.0} and search.edges == {"w": 12.0}


def test_scaled_keeps_integers_and_bounds():
  grow = tuning.scaled(2.0, 1, 64)
  assert grow(16, True) == 32 and isinstance(grow(16, True), int)
  assert grow(64, True) is None and grow(1, False) is None


def test_start_must_name_every_axis():
  with pytest.raises(ValueError, match=r"\['t'\]"):
    tuning.coordinate_search(lambda s: 0.0, AXES, {"w": 1.0}, log=None)


def test_named_choices_have_no_edge():
  axes = (tuning.Axis("schedule", ("cosine", "linear")),)
  search = tuning.coordinate_search(
      lambda s: 0.0 if s["schedule"] == "linear" else 1.0, axes,
      {"schedule": "cosine"}, log=None)
  assert search.best == {"schedule": "linear"} and search.edges == {}


def test_the_learning_rate_screen_goes_past_an_edge_optimum():
  from scripts.studies import ar_vs_maskgit  # pylint: disable=g-import-not-at-top
  grow = ar_vs_maskgit.next_rate
  assert grow({"0.001": 1.0, "0.003": 2.0, "0.006": 3.0}) == pytest.approx(
      1e-3 / 3)
  assert grow({"0.001": 3.0, "0.003": 2.0, "0.006": 1.0}) == 0.012
  assert grow({"0.001": 2.0, "0.003": 1.0, "0.006": 3.0}) is None
  assert grow({"0.0001": 1.0, "0.001": 2.0}) is None  # 3.3e-5: out of range


def test_a_later_budgets_search_starts_from_the_nearest_smaller_pick():
  from scripts.studies import ar_vs_maskgit  # pylint: disable=g-import-not-at-top
  config = ar_vs_maskgit.arm_config("ar", pathlib.Path("base"), steps=1,
                                    seed=0, variant="tiny")
  picked = lambda rate: {"tried": {}, "picked": rate}  # pylint: disable=unnecessary-lambda-assignment
  results = {
      "learning_rate": {"ar 725": picked(3e-3), "ar 1450": picked(1e-3),
                        "maskgit 2900": picked(1e-3), "ar 5800": picked(1e-3),
                        "ar 2900": {"tried": {}}},  # screen unfinished
      "tuning": {"ar 725 lr0.003": {"best": {"cfg_scale": 0.5}},
                 "ar 1450 lr0.001": {"best": {"cfg_scale": 1.0}},
                 "ar 1450 lr0.003": {"best": {"cfg_scale": 9.0}},  # not picked
                 "maskgit 2900 lr0.001": {"best": {"cfg_scale": 3.0}},
                 "ar 5800 lr0.001": {"best": {"cfg_scale": 2.0}}}}
  start = ar_vs_maskgit.search_start
  assert start("ar", 2900, results, config) == {"cfg_scale": 1.0}
  assert start("ar", 1450, results, config) == {"cfg_scale": 0.5}
  assert start("ar", 725, results, config) == ar_vs_maskgit.start_settings(
      "ar", config)
  # A budget screened but not tuned yet is passed over for the one below.
  del results["tuning"]["ar 1450 lr0.001"]
  assert start("ar", 2900, results, config) == {"cfg_scale": 0.5}
  masked = ar_vs_maskgit.arm_config("maskgit_matched", pathlib.Path("base"),
                                    steps=1, seed=0, variant="tiny")
  assert start("maskgit_matched", 5800, results, masked) == (
      ar_vs_maskgit.start_settings("maskgit_matched", masked))
  assert ar_vs_maskgit.cell_key("ar", 725, 0.003) == "ar 725 lr0.003"


def test_the_screen_table_marks_each_arms_pick():
  from scripts.studies import ar_vs_maskgit  # pylint: disable=g-import-not-at-top
  table = ar_vs_maskgit.screen_markdown({
      "maskgit": {"tried": {"0.001": 2.5, "0.003": 2.0}},
      "ar": {"tried": {"0.003": 1.5}}}).splitlines()
  assert table[0] == "| arm | lr 0.001 | lr 0.003 |"
  assert table[2] == "| maskgit | 2.50 | **2.00** |"
  assert table[3] == "| ar |  | **1.50** |"


def test_an_interrupted_search_resumes_from_its_log_without_re_evaluating():
  import json  # pylint: disable=g-import-not-at-top

  def bowl(s):
    return (s["w"] - 6.0) ** 2 + (s["t"] - 9.0) ** 2
  lines = []
  full = tuning.coordinate_search(bowl, AXES, {"w": 2.0, "t": 4.5},
                                  log=lines.append)
  cut = [json.loads(line) for line in lines[: len(lines) // 2]]
  calls = []

  def counted(s):
    calls.append(s)
    return bowl(s)
  logged = []
  resumed = tuning.coordinate_search(counted, AXES, {"w": 2.0, "t": 4.5},
                                     log=logged.append, known=cut)
  assert resumed.best == full.best and resumed.tried == full.tried
  assert len(calls) == len(lines) - len(cut)  # only the rest evaluated
  assert logged == lines[len(cut):]  # the log gets only the new rows
