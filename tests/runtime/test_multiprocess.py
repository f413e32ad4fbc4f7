"""Two processes on localhost (gloo collectives) train like one process."""

import json
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests import train_helpers as th


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _worker(workdir, tokenizer, num_devices, **env):
  return subprocess.Popen(
      [sys.executable, "-m", "tests.multiprocess_worker", str(workdir),
       str(tokenizer)],
      env=th.subprocess_env(num_devices, **env), cwd=th.REPO,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc):
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-3000:]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, tiny_tokenizer):
  tokenizer = tiny_tokenizer
  single = tmp_path / "single"
  _finish(_worker(single, tokenizer, 4))

  multi = tmp_path / "multi"
  port = _free_port()
  procs = [_worker(multi, tokenizer, 2, MASKGIT_COORDINATOR=f"127.0.0.1:{port}",
                   MASKGIT_NUM_PROCESSES=2, MASKGIT_PROCESS_ID=i)
           for i in range(2)]
  for proc in procs:
    _finish(proc)

  # Previews are computed by both processes and written once.
  assert (multi / "previews" / "step_00000003.png").exists()
  reports = [json.loads((multi / f"loaded_{i}.json").read_text())
             for i in range(2)]
  reference = json.loads((single / "loaded_0.json").read_text())
  assert reference["process_count"] == 1 and reference["devices"] == 4
  for report in reports:
    assert report["process_count"] == 2 and report["local_devices"] == 2
    assert report["devices"] == 4
  for b in range(3):
    # Each process loaded only its half of global batch b; together, the
    # single process's batch.
    halves = [dict(r["batches"])[b] for r in reports]
    assert len(halves[0]) == len(halves[1]) == 4
    assert not set(halves[0]) & set(halves[1])
    assert halves[0] + halves[1] == dict(reference["batches"])[b]

  # Same tolerance as the sharded-vs-one-device check: gloo sums gradients
  # in another order than one process does. (The tokenizer's Adam(b1=0)
  # divides each gradient by its own magnitude, which magnifies that
  # rounding for near-zero gradients; the transformer's AdamW does not.)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
      th.restore_params(multi, 3), th.restore_params(single, 3))
