"""The paper-scale path over ``gs://``, against a real GCS-compatible server.

fake-gcs-server (from the registry wheel) runs on loopback; the only
setting the tools get is ``STORAGE_EMULATOR_HOST``. Every step a user runs
on a slice goes through object paths: train both tiny stages (and resume),
pretokenize, sample in shards and merge, evaluate, import the released
format from the public bucket's object names, and sample from the import.
No local ``gs:`` folder may appear.
"""

import io
import os
import subprocess
import sys

import flax.serialization
import jax
import numpy as np

from maskgit_jax import storage
from tests import gcs_emulator
from tests import train_helpers as th

BUCKET = "runs-bkt"
PUBLIC = "maskgit-public"  # the released checkpoints' bucket
RELEASED = "checkpoints/{}_imagenet256_checkpoint"


def _tool(cwd, url, *args):
  command = ([sys.executable, str(th.REPO / args[0])] if args[0].endswith(
      ".py") else [sys.executable, "-m", args[0]]) + list(args[1:])
  result = subprocess.run(
      command, cwd=cwd, env=th.subprocess_env(
          1, STORAGE_EMULATOR_HOST=url), capture_output=True, text=True,
      timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout + result.stderr


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


def test_the_slice_workflow_over_gs(tmp_path, parity):
  run = f"gs://{BUCKET}"
  with gcs_emulator.running(BUCKET, PUBLIC) as url:
    tool = lambda *a: _tool(tmp_path, url, *a)  # pylint: disable=unnecessary-lambda-assignment
    # Stage 1, stopped at step 2 and resumed to 3.
    tool("train.py", _config("vqgan_animal_mnist.py"), f"--workdir={run}/tok",
         "--config.num_train_steps=2")
    log = tool("train.py", _config("vqgan_animal_mnist.py"),
               f"--workdir={run}/tok", "--config.num_train_steps=3")
    assert "resumed from step 2" in log
    objects = gcs_emulator.list_objects(url, BUCKET, "tok/")
    assert any(n.startswith("tok/checkpoints/3/") for n in objects), objects
    assert "tok/metrics.jsonl" in objects

    # Cached tokens, then stage 2 on them; the tokenizer named by gs:// URL.
    tool("maskgit_jax.pretokenize", f"--tokenizer={run}/tok",
         "--data=animal_mnist", "--split=test", "--image_size=16",
         f"--out={run}/tokens.npz")
    tool("train.py", _config("maskgit_animal_mnist.py"), f"--workdir={run}/gen",
         f"--config.tokenizer_checkpoint={run}/tok",
         f"--config.data.name=tokens:{run}/tokens.npz",
         "--config.num_train_steps=2")
    gen_objects = gcs_emulator.list_objects(url, BUCKET, "gen/")
    assert any(n.startswith("gen/checkpoints/2/") for n in gen_objects)

    # Sampling in shards, merged into one ADM file.
    tool("sample.py", f"--checkpoint={run}/gen", "--step=2",
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

    # The released format under the public bucket's names, imported.
    for name, which in (("tokenizer", "tokenizer"), ("maskgit", "transformer")):
      gcs_emulator.upload(url, PUBLIC, RELEASED.format(name),
                          flax.serialization.msgpack_serialize(
                              parity.params(which)))
    public = f"gs://{PUBLIC}/{RELEASED}"
    tool("maskgit_jax.official", f"--tokenizer={public.format('tokenizer')}",
         f"--transformer={public.format('maskgit')}",
         f"--out={run}/imported")
    tool("sample.py", f"--checkpoint={run}/imported", "--labels=3,7",
         "--num_iter=4", f"--output={run}/imported.png")
    assert "imported.png" in gcs_emulator.list_objects(url, BUCKET, "imp")
  _no_local_gs_folder(tmp_path, th.REPO)
