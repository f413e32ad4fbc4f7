"""sharding.split_host_cpu: the XLA flag that splits the host CPU."""

import os
import subprocess
import sys

import pytest

from maskgit_jax.runtime import sharding

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


def test_sizes_the_xla_thread_pool_per_device(monkeypatch):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  monkeypatch.delenv("PJRT_NPROC", raising=False)
  monkeypatch.setattr(os, "cpu_count", lambda: 2)
  sharding.split_host_cpu(4)
  assert os.environ["PJRT_NPROC"] == str(4 * sharding.CPU_THREADS_PER_DEVICE)
  monkeypatch.setenv("PJRT_NPROC", "3")  # the user's choice wins
  sharding.split_host_cpu(4)
  assert os.environ["PJRT_NPROC"] == "3"


class _Step:
  """A fake step output that records when it was waited for."""

  def __init__(self, index, waited):
    self.index, self.waited = index, waited

  def block_until_ready(self):
    self.waited.append(self.index)
    return self


def test_in_flight_waits_for_the_step_beyond_its_depth():
  waited = []
  in_flight = sharding.InFlight(depth=2)
  for i in range(5):
    in_flight.push(_Step(i, waited))
    assert waited == list(range(max(0, i - 1)))


def test_in_flight_rejects_a_zero_depth():
  with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
    sharding.InFlight(0)


# A data-parallel step dispatched 3,000 times without waiting: with XLA's
# default pool (max(cores, devices) threads) this aborted in the all-reduce
# rendezvous within 2,000 steps in every run on 2 cores.
_DISPATCH_AHEAD = """
from maskgit_jax.runtime import sharding
sharding.split_host_cpu(4)
import jax, jax.numpy as jnp
mesh = sharding.make_mesh((-1, 1, 1))
w = jax.device_put(jnp.ones((128, 128)), sharding.replicated(mesh))
x = jax.device_put(jnp.ones((64, 128)), sharding.batch_sharding(mesh))
step = jax.jit(lambda w, x: w - 1e-6 * jax.grad(
    lambda w: jnp.tanh(x @ w).sum())(w))
for _ in range(3000):
  w = step(w, x)
print(float(w.sum()))
"""


def test_split_cpu_survives_steps_dispatched_ahead():
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", "PJRT_NPROC")}
  result = subprocess.run([sys.executable, "-c", _DISPATCH_AHEAD], env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]


def test_a_fresh_process_gets_that_many_cpu_devices():
  code = ("from maskgit_jax.runtime import sharding; sharding.split_host_cpu(3); "
          "import jax; print(len(jax.devices('cpu')))")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       capture_output=True, text=True).stdout
  assert out.strip().splitlines()[-1] == "3"
