"""The training system in-process: both stages end to end, meshes, errors."""

import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.trainers import loop
from maskgit_jax.trainers import token_objectives
from maskgit_jax.trainers import token_trainer
from tests import train_helpers as th


@pytest.fixture(scope="module")
def animal_tokenizer(tiny_tokenizer):
  """A stage-1 workdir trained for a few steps on animal-MNIST (shared)."""
  return tiny_tokenizer


@pytest.mark.slow  # trains or compiles for several seconds
def test_animal_mnist_both_stages_checkpoint_and_resume(animal_tokenizer,
                                                        tmp_path):
  assert th.checkpoint_steps(animal_tokenizer) == [3, 6]
  assert (animal_tokenizer / "previews" / "step_00000006.png").exists()
  config = th.transformer_config(animal_tokenizer)
  metrics = loop.train_and_evaluate(config, tmp_path)
  assert th.checkpoint_steps(tmp_path) == [3, 6]
  assert 0 < metrics["loss"] < 10 and 0 <= metrics["masked_accuracy"] <= 1
  assert len(list((tmp_path / "previews").glob("*.png"))) == 2
  # The same command with a later end resumes at 6 instead of restarting.
  config.num_train_steps = 9
  loop.train_and_evaluate(config, tmp_path)
  assert th.checkpoint_steps(tmp_path) == [3, 6, 9]


@pytest.mark.slow  # trains or compiles for several seconds
def test_the_loop_trains_the_tokenizer_across_its_gan_phases(tmp_path):
  """The discriminator joins at step 2 with R1 every 2nd step: the loop's
  one program per phase trains the tiny tokenizer across the switch."""
  config = th.tokenizer_config(num_train_steps=4, log_every_steps=1,
                               checkpoint_every_steps=4)
  config.losses.update(discriminator_start_step=2, r1_interval=2)
  loop.train_and_evaluate(config, tmp_path)
  rows = [json.loads(line) for line in
          (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  discriminator = [r["discriminator_loss"] for r in rows]
  assert discriminator[:2] == [0.0, 0.0] and min(discriminator[2:]) > 0
  assert [r["r1_penalty"] > 0 for r in rows] == [False, False, True, False]


@pytest.mark.slow  # trains or compiles for several seconds
def test_tfds_mock_data_both_stages(tmp_path):
  with tfds.testing.mock_data(num_examples=64,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    tok = tmp_path / "tok"
    loop.train_and_evaluate(
        th.tokenizer_config("tfds:imagenet2012", num_train_steps=3), tok)
    assert th.checkpoint_steps(tok) == [3]
    config = th.transformer_config(tok, "tfds:imagenet2012",
                                   num_train_steps=3)
    with pytest.raises(ValueError, match="1000 classes but the model has 10"):
      loop.train_and_evaluate(config, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # nothing written on bad input
    config.model.num_classes = 1000
    config.model.max_position_embeddings = 65
    loop.train_and_evaluate(config, tmp_path / "tf")
    assert th.checkpoint_steps(tmp_path / "tf") == [3]


# ---------------------------------------------------------------------------
# The same step on different meshes.

MODEL = transformer_lib.Transformer(
    codebook_size=64, num_classes=10, hidden_size=64, num_layers=2,
    num_heads=4, mlp_dim=128, max_position_embeddings=65)


def _one_step(mesh_shape, devices):
  trainer = token_trainer.TokenTrainer(
      token_objectives.MVTM(MODEL), optimizer=token_trainer.make_optimizer(
          learning_rate=1e-3, warmup_steps=1, total_steps=10))
  batch = {
      "tokens": jax.random.randint(jax.random.PRNGKey(1), (8, 8, 8), 0, 64),
      "labels": jnp.arange(8) % 10,
  }
  return th.sharded_step(trainer, mesh_shape, devices, batch)


@pytest.mark.slow  # trains or compiles for several seconds
def test_sharded_steps_match_one_device():
  devices = jax.devices()
  assert len(devices) == 8
  reference, ref_metrics = _one_step((1, 1, 1), devices[:1])
  ref = jax.device_get(reference.params)
  for shape in [(8, 1, 1), (4, 2, 1), (2, 2, 2)]:
    state, metrics = _one_step(shape, devices)
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"],
                               rtol=1e-5)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
        jax.device_get(state.params), ref)
    if shape == (2, 2, 2):
      kernel = state.params["TransformerLayer_0"]["Mlp_0"][
          "intermediate_output"]["kernel"]  # ('embed', 'mlp') -> fsdp, model
      shard = kernel.addressable_shards[0].data.shape
      assert shard == (32, 64) and kernel.shape == (64, 128)
      # Adam moments are sharded like their params; the count is replicated.
      mu = jax.tree_util.tree_leaves(state.opt_state)
      assert any(leaf.shape == (64, 128) and
                 leaf.addressable_shards[0].data.shape == (32, 64)
                 for leaf in mu)


@pytest.mark.slow  # trains or compiles for several seconds
def test_gradient_accumulation_updates_every_k_steps():
  trainer = token_trainer.TokenTrainer(
      token_objectives.MVTM(MODEL), optimizer=token_trainer.make_optimizer(
          learning_rate=1e-3, warmup_steps=0, total_steps=10,
          accumulation_steps=2))
  state = jax.tree_util.tree_map(jnp.asarray, __import__(
      "flax").linen.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0))))
  batch = {"tokens": jax.random.randint(jax.random.PRNGKey(1), (4, 8, 8), 0,
                                        64), "labels": jnp.arange(4)}
  step = jax.jit(trainer.train_step)
  changed = []
  for i in range(4):
    new_state, _ = step(state, batch, jax.random.PRNGKey(i))
    moved = jax.tree_util.tree_map(
        lambda a, b: bool((np.asarray(a) != np.asarray(b)).any()),
        state.params, new_state.params)
    changed.append(any(jax.tree_util.tree_leaves(moved)))
    state = new_state
  assert changed == [False, True, False, True]


@pytest.mark.slow  # trains or compiles for several seconds
def test_ema_follows_the_params_early_and_settles_to_its_decay():
  decay = np.asarray([token_trainer.ema_decay_at(t, 0.999)
                      for t in (0, 1, 90, 10**6)])
  np.testing.assert_allclose(decay, [0.1, 2 / 11, 0.91, 0.999], rtol=1e-6)
  # The random init's share of the average after t steps: prod of decays.
  share = np.prod([float(token_trainer.ema_decay_at(t, 0.999))
                   for t in range(1400)])
  assert share < 1e-3  # without the ramp: 0.999 ** 1400 = 0.25

  trainer = token_trainer.TokenTrainer(
      token_objectives.MVTM(MODEL), optimizer=token_trainer.make_optimizer(
          learning_rate=1e-2, warmup_steps=0, total_steps=10))
  state = jax.tree_util.tree_map(jnp.asarray, __import__(
      "flax").linen.unbox(jax.jit(trainer.init)(jax.random.PRNGKey(0))))
  batch = {"tokens": jax.random.randint(jax.random.PRNGKey(1), (4, 8, 8), 0,
                                        64), "labels": jnp.arange(4)}
  expected = state.ema_params
  for i in range(3):
    state, _ = jax.jit(trainer.train_step)(state, batch, jax.random.PRNGKey(i))
    d = float(token_trainer.ema_decay_at(i, 0.999))
    expected = jax.tree_util.tree_map(lambda e, p, d=d: d * e + (1 - d) * p,
                                      expected, state.params)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
      state.ema_params, expected)


# ---------------------------------------------------------------------------
# Bad input: clear errors, no damage.


def _listing(path: pathlib.Path):
  return sorted((str(p.relative_to(path)), p.stat().st_size)
                for p in path.rglob("*") if p.is_file())


@pytest.mark.slow  # trains or compiles for several seconds
def test_bad_inputs_are_reported_without_touching_the_workdir(
    animal_tokenizer, tmp_path):
  before = _listing(animal_tokenizer)
  cases = [
      (dict(batch_size=7), ValueError,
       "batch_size 7 is not divisible by the data-parallel size 8"),
      (dict(data=dict(name="tfds:no_such_dataset_xyz", split="train",
                      min_scale=1.0, flip=False)), FileNotFoundError,
       "TFDS dataset 'no_such_dataset_xyz' is neither registered nor prepared"),
      (dict(data=dict(name="imagenet", split="train", min_scale=1.0,
                      flip=False)), ValueError, "unknown dataset 'imagenet'"),
      (dict(mesh_shape=(3, 1, 1)), ValueError,
       r"mesh_shape \(3, 1, 1\) needs 3 devices, found 8"),
  ]
  for overrides, error, message in cases:
    config = th.tokenizer_config()
    config.update(overrides)
    with pytest.raises(error, match=message):
      loop.train_and_evaluate(config, animal_tokenizer)
  assert _listing(animal_tokenizer) == before

  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  with pytest.raises(PermissionError, match="is not writable"):
    loop.train_and_evaluate(th.tokenizer_config(), blocker / "run")

  with pytest.raises(FileNotFoundError, match="tokenizer checkpoint"):
    loop.train_and_evaluate(th.transformer_config(tmp_path / "none"),
                            tmp_path / "run2")
  stage2 = tmp_path / "stage2"
  loop.train_and_evaluate(th.transformer_config(animal_tokenizer,
                                                num_train_steps=3), stage2)
  with pytest.raises(ValueError, match="is a 'transformer' checkpoint"):
    loop.train_and_evaluate(th.transformer_config(stage2), tmp_path / "run3")


@pytest.mark.slow  # trains or compiles for several seconds
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  loop.train_and_evaluate(th.tokenizer_config(num_train_steps=3), tmp_path)
  good = _listing(tmp_path / "checkpoints")
  config = th.tokenizer_config(num_train_steps=6)
  config.optimizer.learning_rate = 1e30  # parameters overflow at once
  with pytest.raises(FloatingPointError, match="non-finite training values"):
    loop.train_and_evaluate(config, tmp_path)
  assert th.checkpoint_steps(tmp_path) == [3]
  assert _listing(tmp_path / "checkpoints") == good


@pytest.mark.slow  # trains or compiles for several seconds
def test_pretokenized_stage2_data(animal_tokenizer, tmp_path):
  from maskgit_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from maskgit_jax.tools import pretokenize  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  path = pretokenize.pretokenize(str(animal_tokenizer), "animal_mnist",
                                 "test", 16, str(tmp_path / "tok.npz"),
                                 batch_size=512, progress=lambda _: None)
  cached = np.load(path)
  assert cached["tokens"].shape == (2000, 2, 8, 8)
  model, params = restore.load_tokenizer(animal_tokenizer)
  source = input_pipeline.make_source("animal_mnist", "test")
  images = np.stack([input_pipeline.center_crop(source[i][0], 16)
                     for i in range(4)]).astype(np.float32) / 255
  for variant, batch in enumerate([images, images[:, :, ::-1]]):
    ids = model.apply({"params": params}, jnp.asarray(batch),
                      method=model.encode_to_indices)
    np.testing.assert_array_equal(cached["tokens"][:4, variant], ids)

  config = th.transformer_config(animal_tokenizer, f"tokens:{path}",
                                 num_train_steps=3)
  metrics = loop.train_and_evaluate(config, tmp_path / "run")
  assert np.isfinite(metrics["loss"])
  config.token_factor = 4  # claims a 4x4 grid
  with pytest.raises(ValueError, match=r"token file grid \(8, 8\) does not"):
    loop.train_and_evaluate(config, tmp_path / "run2")
  tokenizer = th.tokenizer_config()
  tokenizer.data.name = f"tokens:{path}"
  with pytest.raises(ValueError, match="only feed the token stages, not "
                     "config.stage 'tokenizer'"):
    loop.train_and_evaluate(tokenizer, tmp_path / "run3")
  assert not (tmp_path / "run3").exists()


def test_an_unconditional_maskgit_ignores_the_labels():
  model = MODEL.clone(num_classes=1)
  objective = token_objectives.MVTM(model, unconditional=True)
  params = nn.unbox(jax.jit(objective.init_params)(jax.random.PRNGKey(0)))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (4, 64), 0, 64)
  rng = jax.random.PRNGKey(2)
  loss_fn = jax.jit(objective.loss)  # as the trainer runs it
  loss, _ = loss_fn(params, tokens, jnp.array([0, 3, 7, 9]), rng)
  zeros, _ = loss_fn(params, tokens, jnp.zeros(4, jnp.int32), rng)
  # Every label is the one class: a conditional objective given all zeros.
  given, _ = jax.jit(token_objectives.MVTM(model).loss)(
      params, tokens, jnp.zeros(4, jnp.int32), rng)
  np.testing.assert_array_equal([loss, zeros], [given, given])
  with pytest.raises(ValueError, match="one class token.*got 10 and 0.0"):
    token_objectives.MVTM(MODEL, unconditional=True)
  with pytest.raises(ValueError, match="no label dropout.*got 1 and 0.1"):
    token_objectives.MVTM(model.clone(num_classes=1), unconditional=True,
                          label_dropout=0.1, null_label=1)


@pytest.mark.slow  # trains or compiles for several seconds
def test_the_loop_trains_an_unconditional_maskgit_on_labelled_data(
    animal_tokenizer, tmp_path):
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  config = th.transformer_config(animal_tokenizer, num_train_steps=2)
  config.model.num_classes = 1  # the data has 10: ignored, not refused
  config.masking.update(unconditional=True, label_dropout=0.0)
  config.decode.cfg_scale = 0.0
  metrics = loop.train_and_evaluate(config, tmp_path / "run")
  assert np.isfinite(metrics["loss"])
  gen = sampling.Generator.from_checkpoint(tmp_path / "run", batch_size=4)
  assert gen.num_classes == 1 and gen.null_label is None
  assert gen.sample([0, 0], seed=0).tokens.shape == (2, 8, 8)
  with pytest.raises(ValueError, match="out of range"):
    gen.sample([3])
  # Its features need no null class: the one class tells nothing.
  from maskgit_jax.evaluation import representations  # pylint: disable=g-import-not-at-top
  extract, size = representations.extractor("maskgit", str(tmp_path / "run"))
  images = np.zeros((2, size, size, 3), np.uint8)
  assert extract(images).shape == (2, config.model.hidden_size)
