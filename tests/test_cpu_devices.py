"""sharding.split_host_cpu: the XLA flag that splits the host CPU."""

import os
import subprocess
import sys

import pytest

from maskgit_jax import sharding

FLAG = sharding.CPU_DEVICES_FLAG


def test_sets_the_flag_when_unset(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
  assert sharding.split_host_cpu(4) == 4
  assert os.environ["XLA_FLAGS"] == (
      f"--xla_cpu_enable_fast_math=false {FLAG}=4")


def test_an_existing_count_wins(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", f"{FLAG}=3 --other=1")
  assert sharding.split_host_cpu(8) == 3
  assert os.environ["XLA_FLAGS"] == f"{FLAG}=3 --other=1"


@pytest.mark.parametrize("cores, expected", [(1, 2), (2, 4), (3, 4), (6, 8),
                                             (64, 8)])
def test_default_is_twice_the_cores_as_a_power_of_two(monkeypatch, cores,
                                                      expected):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  monkeypatch.setattr(os, "cpu_count", lambda: cores)
  assert sharding.split_host_cpu() == expected


def test_rejects_a_non_positive_count(monkeypatch):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  with pytest.raises(ValueError, match="devices must be positive, got 0"):
    sharding.split_host_cpu(0)


def test_a_fresh_process_gets_that_many_cpu_devices():
  code = ("from maskgit_jax import sharding; sharding.split_host_cpu(3); "
          "import jax; print(len(jax.devices('cpu')))")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       capture_output=True, text=True).stdout
  assert out.strip().splitlines()[-1] == "3"
