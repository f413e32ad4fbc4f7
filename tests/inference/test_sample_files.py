"""Many samples as ADM shards: resumable, split over processes, merged.

The model is the official-format fixture imported (16 px); every check
compares arrays drawn by different splits of the same indices.
"""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from maskgit_jax import sampling
from maskgit_jax.runtime import storage
from maskgit_jax.inference import sample_files
from tests import train_helpers as th

N, SHARD = 20, 8
OPTIONS = dict(num_iter=3)


@pytest.fixture(scope="module")
def gen(imported):
  return sampling.Generator.from_checkpoint(imported, batch_size=8)


def _shards(folder):
  return [storage.load_npz(p) for p in sample_files.shard_files(folder)]


@pytest.fixture(scope="module")
def whole(gen, tmp_path_factory):
  """One process, one go."""
  out = tmp_path_factory.mktemp("whole")
  counts = sample_files.write_shards(gen, out, N, seed=5, shard_size=SHARD,
                                     **OPTIONS)
  assert counts == {"written": 3, "skipped": 0}
  return out


def test_shards_are_class_balanced_and_equal_one_sample_call(gen, whole):
  shards = _shards(whole)
  assert [len(s["arr_1"]) for s in shards] == [8, 8, 4]
  labels = np.concatenate([s["arr_1"] for s in shards])
  np.testing.assert_array_equal(labels, np.arange(N) % gen.num_classes)
  direct = gen.sample(labels, seed=5, **OPTIONS).images
  np.testing.assert_array_equal(
      np.concatenate([s["arr_0"] for s in shards]), direct)


def test_two_shares_and_an_interrupted_run_equal_one_run(gen, whole, tmp_path):
  for index in (1, 0):  # process 1 first: order does not matter
    sample_files.write_shards(gen, tmp_path, N, seed=5, shard_size=SHARD,
                              process_index=index, process_count=2, **OPTIONS)
  # An interruption: one shard lost, a half-written temporary left behind.
  (tmp_path / sample_files.shard_name(1, 3)).unlink()
  (tmp_path / (sample_files.shard_name(1, 3) + ".tmp")).write_bytes(b"PK")
  with pytest.raises(FileNotFoundError, match="lacks 1 of 3 shards"):
    sample_files.shard_files(tmp_path)
  counts = sample_files.write_shards(gen, tmp_path, N, seed=5,
                                     shard_size=SHARD, **OPTIONS)
  assert counts == {"written": 1, "skipped": 2}
  for mine, reference in zip(_shards(tmp_path), _shards(whole)):
    assert mine.keys() == reference.keys()
    for key in mine:
      np.testing.assert_array_equal(mine[key], reference[key])


def test_other_settings_in_the_same_folder_are_refused(gen, whole):
  with pytest.raises(ValueError, match="seed: 5 -> 6"):
    sample_files.write_shards(gen, whole, N, seed=6, shard_size=SHARD,
                              **OPTIONS)


def test_merge_streams_into_what_the_standard_reader_takes(whole, tmp_path):
  merged = sample_files.merge(whole, tmp_path / "all.npz")
  with open(merged, "rb") as f:
    data = np.load(f)  # as ADM's evaluator reads it
    images, labels = data["arr_0"], data["arr_1"]
  shards = _shards(whole)
  np.testing.assert_array_equal(
      images, np.concatenate([s["arr_0"] for s in shards]))
  np.testing.assert_array_equal(
      labels, np.concatenate([s["arr_1"] for s in shards]))
  assert images.dtype == np.uint8 and labels.dtype == np.int32


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_sample_py_on_two_processes_equals_one(imported, whole, tmp_path):
  args = [sys.executable, str(th.REPO / "sample.py"),
          f"--checkpoint={imported}", f"--num_samples={N}",
          f"--shard_size={SHARD}", "--seed=5", "--num_iter=3",
          "--batch_size=8", f"--output_dir={tmp_path / 'shards'}",
          f"--output_npz={tmp_path / 'all.npz'}"]
  port = _free_port()
  logs = [tmp_path / f"log_{i}.txt" for i in range(2)]
  procs = [subprocess.Popen(  # logs to files: a full pipe would block a peer
      args, cwd=tmp_path, stdout=logs[i].open("w"), stderr=subprocess.STDOUT,
      env=th.subprocess_env(
          1, MASKGIT_COORDINATOR=f"127.0.0.1:{port}",
          MASKGIT_NUM_PROCESSES=2, MASKGIT_PROCESS_ID=i)) for i in range(2)]
  for proc, log in zip(procs, logs):
    proc.wait(timeout=600)
    assert proc.returncode == 0, log.read_text()[-3000:]
  assert "wrote 2 shards" in logs[0].read_text()  # shards 0 and 2
  assert "wrote 1 shards" in logs[1].read_text()
  manifest = json.loads((tmp_path / "shards" / "sampling.json").read_text())
  assert manifest["num_samples"] == N and manifest["seed"] == 5
  with np.load(tmp_path / "all.npz") as data:
    expected = _shards(whole)
    np.testing.assert_array_equal(
        data["arr_0"], np.concatenate([s["arr_0"] for s in expected]))
