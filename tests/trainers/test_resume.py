"""Resuming through train.py: after SIGKILL, from corrupted checkpoints."""

import pathlib
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from maskgit_jax.trainers import loop
from tests import train_helpers as th

CONFIG = "configs/vqgan_animal_mnist.py:tiny"
RUN = ("--config.num_train_steps=60", "--config.checkpoint_every_steps=5",
       "--config.log_every_steps=20", "--config.preview_every_steps=0")


def _run(workdir, *extra, check=True):
  return subprocess.run(th.train_command(workdir, CONFIG, *RUN, *extra),
                        env=th.subprocess_env(), cwd=th.REPO,
                        capture_output=True, text=True, timeout=600,
                        check=check)


@pytest.mark.slow
def test_sigkill_then_same_command_matches_uninterrupted_run(tmp_path):
  reference = tmp_path / "reference"
  _run(reference)

  killed = tmp_path / "killed"
  proc = subprocess.Popen(th.train_command(killed, CONFIG, *RUN),
                          env=th.subprocess_env(), cwd=th.REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if (killed / "checkpoints" / "10").is_dir():
      break
    time.sleep(0.02)
  assert proc.poll() is None, "the run ended before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps_at_kill = th.checkpoint_steps(killed)
  assert 60 not in steps_at_kill and 10 in steps_at_kill

  _run(killed)  # the same command again: resumes
  assert th.checkpoint_steps(killed)[-1] == 60
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
      th.restore_params(killed, 60), th.restore_params(reference, 60))


@pytest.mark.slow  # trains or compiles for several seconds
def test_corrupted_latest_checkpoint_falls_back_to_the_previous(tmp_path):
  config = th.tokenizer_config(num_train_steps=6)
  loop.train_and_evaluate(config, tmp_path)
  latest = tmp_path / "checkpoints" / "6" / "state"
  for f in latest.rglob("*"):
    if f.is_file() and f.stat().st_size > 0 and "metadata" not in f.name:
      f.write_bytes(b"\0garbage" * 8)
  config.num_train_steps = 9
  loop.train_and_evaluate(config, tmp_path)
  assert (tmp_path / "corrupt_checkpoints" / "6").is_dir()
  assert th.checkpoint_steps(tmp_path) == [3, 6, 9]
  # Resuming from 3 replays 4..6 exactly: the new step 6 and 9 are sound.
  reference = tmp_path.parent / (tmp_path.name + "_ref")
  loop.train_and_evaluate(th.tokenizer_config(num_train_steps=9), reference)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
      th.restore_params(tmp_path, 9), th.restore_params(reference, 9))


@pytest.mark.slow  # trains or compiles for several seconds
def test_unrestorable_checkpoints_are_reported_not_moved(tmp_path):
  loop.train_and_evaluate(th.tokenizer_config(num_train_steps=3), tmp_path)
  config = th.tokenizer_config(num_train_steps=6)
  config.model.codebook_size = 16  # a different model: nothing fits
  with pytest.raises(ValueError, match="does the config match"):
    loop.train_and_evaluate(config, tmp_path)
  assert th.checkpoint_steps(tmp_path) == [3]
  assert not (tmp_path / "corrupt_checkpoints").exists()


@pytest.mark.parametrize("extra, message", [
    (("--config.no_such_field=1",), "no_such_field"),
    (("--config.batch_size=many",), "--config.batch_size=many"),
    (("leftover",), "unexpected arguments: leftover"),
    (("--config.data.name=tfds:no_such_dataset_xyz",),
     "TFDS dataset 'no_such_dataset_xyz'"),
])
@pytest.mark.slow
def test_cli_reports_bad_input_in_one_line(tmp_path, extra, message):
  result = _run(tmp_path / "run", *extra, check=False)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr


@pytest.mark.slow  # trains or compiles for several seconds
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
  proc = subprocess.Popen(
      th.train_command(tmp_path, CONFIG, "--config.num_train_steps=100000",
                       "--config.checkpoint_every_steps=1000",
                       "--config.preview_every_steps=0"),
      env=th.subprocess_env(), cwd=th.REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  # Wait until training runs (the first log line after step 2), then stop.
  while time.time() < deadline and proc.poll() is None:
    if (tmp_path / "metrics.jsonl").exists():
      time.sleep(3)
      break
    time.sleep(0.1)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-2000:]
  steps = th.checkpoint_steps(tmp_path)
  # The save happened at the step where the signal arrived, not on the
  # 1000-step interval.
  assert len(steps) == 1 and 0 < steps[0] < 1000, steps
