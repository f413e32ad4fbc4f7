"""The machine's matmul rate: FLOPs over the median time."""

import itertools

import pytest

from maskgit_jax.runtime import machine


def test_rate_is_two_n_cubed_over_the_median_call(monkeypatch):
  # Each timed call reads the clock twice; calls take 1, 3 and 2 seconds.
  ticks = itertools.chain.from_iterable((0.0, d) for d in (1.0, 3.0, 2.0))
  monkeypatch.setattr(machine.time, "perf_counter", lambda: next(ticks))
  assert machine.matmul_gflops(64, repeats=3) == pytest.approx(
      2 * 64 ** 3 / 2.0 / 1e9)


def test_a_real_measurement_is_positive_and_bad_sizes_are_named():
  assert machine.matmul_gflops(128, repeats=2) > 0
  with pytest.raises(ValueError, match="got 0, 5"):
    machine.matmul_gflops(0)
