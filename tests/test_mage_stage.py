"""MAGE end to end: the stage, the Generator, sample.py, the probe."""

import json

import numpy as np
import pytest

from tests import train_helpers as th


@pytest.fixture(scope="module")
def mage_run(tmp_path_factory, tiny_tokenizer):
  """A tiny tokenizer, then the ``mage`` stage on its tokens."""
  from maskgit_jax.presets import mage_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("mage_run")
  (root / "tok").symlink_to(tiny_tokenizer)
  config = mage_animal_mnist.get_config("tiny")
  config.tokenizer_checkpoint = str(root / "tok")
  config.decode.num_iter = 4
  metrics = loop.train_and_evaluate(config, root / "mage")
  assert np.isfinite(metrics["loss"]) and 0 <= metrics["masked_accuracy"] <= 1
  assert 32 <= metrics["masked_per_row"] <= 64  # ratio in [0.5, 1], L = 64
  assert len(list((root / "mage" / "previews").glob("*.png"))) == 2
  return root


@pytest.mark.slow  # trains or compiles for several seconds
def test_generator_samples_and_edits_unconditionally(mage_run):
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import mage as mage_lib  # pylint: disable=g-import-not-at-top
  gen = sampling.Generator.from_checkpoint(mage_run / "mage", batch_size=4)
  assert isinstance(gen.transformer, mage_lib.MAGE)
  assert gen.num_classes == 1 and gen.null_label is None
  assert gen.defaults.num_iter == 4 and gen.defaults.cfg_scale == 0
  a = gen.sample(np.zeros(3, np.int32), seed=1)
  assert a.tokens.shape == (3, 8, 8) and a.images.shape == (3, 16, 16, 3)
  assert a.tokens.max() < gen.layout.codebook_size
  first = gen.sample([0], seed=1)  # sample i depends on (seed, i) only
  np.testing.assert_array_equal(first.tokens[0], a.tokens[0])
  # p(x) of a one-class model: its one class, as sample([0, 0, 0]) does.
  np.testing.assert_array_equal(
      gen.sample_unconditional(3, seed=1).tokens, a.tokens)
  box = np.zeros((16, 16), bool)
  box[4:8, 4:8] = True
  filled = gen.inpaint(a.images[0], box, seed=2)  # no label: [C]
  assert filled.shape == (16, 16, 3)
  with pytest.raises(ValueError, match="out of range"):
    gen.sample([1])
  with pytest.raises(ValueError, match="cfg_scale needs"):
    gen.sample([0], cfg_scale=2.0)
  with pytest.raises(ValueError, match="float32 only"):
    sampling.Generator.from_checkpoint(mage_run / "mage",
                                       precision="bfloat16")
  with pytest.raises(ValueError, match="not on MAGE"):
    sampling.Generator.from_checkpoint(mage_run / "mage",
                                       critic=mage_run / "mage")


_run = th.run_tool


@pytest.mark.slow  # trains or compiles for several seconds
def test_sample_cli_on_mage(mage_run, tmp_path):
  done = _run("sample.py", f"--checkpoint={mage_run / 'mage'}",
              "--num_samples=3", f"--output_npz={tmp_path / 's.npz'}")
  assert done.returncode == 0, done.stderr
  with np.load(tmp_path / "s.npz") as data:
    assert data["arr_0"].shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(data["arr_1"], 0)
  refused = _run("sample.py", f"--checkpoint={mage_run / 'mage'}",
                 "--labels=2", f"--output={tmp_path / 'x.png'}")
  assert refused.returncode == 2
  assert "label 2 is out of range: this model has 1 classes" in refused.stderr
  assert "Traceback" not in refused.stderr
  assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # trains or compiles for several seconds
def test_probe_cli_on_mage(mage_run, tmp_path):
  out = tmp_path / "probe.json"
  done = _run("maskgit_jax.evaluation.probe", "--features=mage",
              f"--checkpoint={mage_run / 'mage'}", "--max_train=200",
              "--epochs=2", f"--output_json={out}")
  assert done.returncode == 0, done.stderr
  result = json.loads(out.read_text())
  assert result["num_train"] == 200 and result["num_eval"] == 2000
  assert result["feature_dim"] == 32 and 0 <= result["test_accuracy"] <= 1
  assert result["pooling"] == "mean"
  for args, message in [
      (("--features=maskgit", f"--checkpoint={mage_run / 'mage'}"),
       "is a 'mage' checkpoint"),
      (("--features=mage", f"--checkpoint={mage_run / 'mage'}",
        "--max_train=0"), "--max_train must be positive"),
      (("--features=pixels", f"--checkpoint={mage_run / 'mage'}"),
       "takes no --checkpoint"),
      (("--features=mage", f"--checkpoint={tmp_path / 'nothing'}"),
       "not found")]:
    refused = _run("maskgit_jax.evaluation.probe", *args,
                   f"--output_json={tmp_path / 'bad.json'}")
    assert refused.returncode == 2, refused.stderr
    assert message in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.slow  # trains or compiles for several seconds
def test_every_feature_kind_comes_pooled_and_flattened(mage_run):
  from maskgit_jax.evaluation import representations  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3),
                                             np.uint8)
  dims = {}
  for kind, workdir in (("mage", "mage"), ("tokenizer", "tok")):
    for pooling in representations.POOLINGS:
      extract, _ = representations.extractor(kind, str(mage_run / workdir),
                                             pooling)
      dims[kind, pooling] = extract(images).shape
  # 8x8 positions: MAGE's 32-wide states, the tokenizer's 16-d latents.
  assert dims == {("mage", "mean"): (3, 32), ("mage", "flatten"): (3, 64 * 32),
                  ("tokenizer", "mean"): (3, 16),
                  ("tokenizer", "flatten"): (3, 64 * 16)}


@pytest.mark.slow  # trains or compiles for several seconds
def test_mage_c_trains_on_both_views_of_cached_tokens(tiny_tokenizer,
                                                      tmp_path):
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  from maskgit_jax.presets import mage_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.tools import pretokenize  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  cached = pretokenize.pretokenize(str(tiny_tokenizer), "animal_mnist", "test",
                                   16, str(tmp_path / "tokens.npz"),
                                   batch_size=512, progress=lambda _: None)
  config = mage_animal_mnist.get_config("tiny")
  config.tokenizer_checkpoint = str(tiny_tokenizer)
  config.model.projection_dim = 16
  config.mage.contrastive_weight = 0.1
  config.update(num_train_steps=2, preview_every_steps=0)
  config.data.name = "animal_mnist"  # images: no mirror's tokens to pair
  with pytest.raises(ValueError, match="need cached tokens"):
    loop.train_and_evaluate(config, tmp_path / "bad")
  assert not (tmp_path / "bad").exists()
  config.data.name = f"tokens:{cached}"
  metrics = loop.train_and_evaluate(config, tmp_path / "mage_c")
  assert np.isfinite(metrics["loss"]) and metrics["contrastive_loss"] > 0
  assert 0 <= metrics["contrastive_accuracy"] <= 1
  assert 32 <= metrics["masked_per_row"] <= 64  # each view row: [0.5, 1] of 64
  gen = sampling.Generator.from_checkpoint(tmp_path / "mage_c", batch_size=4)
  assert gen.sample([0, 0], seed=0).tokens.shape == (2, 8, 8)
