"""The continuous stage's body and objective (issue 29)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.models import continuous_transformer as ct
from maskgit_jax.trainers import continuous_objectives as co
from maskgit_jax.trainers import token_trainer
from tests import train_helpers as th

BODY = ct.ContinuousTransformer(channels=3, num_classes=5, num_tokens=16,
                                hidden_size=32, num_layers=2, num_heads=2,
                                mlp_dim=64, dropout_rate=0.0,
                                attention_dropout_rate=0.0)


def _latents(seed=1, batch=8):
  return {"latents": jax.random.normal(jax.random.PRNGKey(seed),
                                       (batch, 4, 4, 3)),
          "labels": jnp.arange(batch) % 4}


def test_the_body_ignores_masked_tokens_and_sees_every_known_one():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 3))
  mask = jnp.zeros((2, 16), bool).at[:, 5].set(True)
  labels = jnp.array([1, 2])
  params = jax.jit(BODY.init)(jax.random.PRNGKey(0), x, mask, labels)
  apply = jax.jit(BODY.apply)
  z = apply(params, x, mask, labels)
  assert z.shape == (2, 16, 32)
  np.testing.assert_array_equal(  # what sits under the mask is never read
      z, apply(params, x.at[:, 5].add(10.0), mask, labels))
  moved = apply(params, x.at[:, 9].add(1.0), mask, labels)
  assert not np.allclose(moved[:, 0], z[:, 0])  # bidirectional
  assert not np.allclose(apply(params, x, mask, labels + 1), z)
  with pytest.raises(ValueError, match=r"\(16, 4\).*\(16, 3\)"):
    BODY.apply(params, jnp.zeros((2, 16, 4)), mask, labels)


@pytest.mark.parametrize("head", co.HEADS)
def test_the_loss_is_the_heads_mean_over_the_masked_tokens(head, monkeypatch):
  objective = co.ContinuousMVTM(BODY, head=head, head_width=16, head_depth=1,
                                num_mixtures=2)
  params = jax.tree.map(lambda x: getattr(x, "value", x),
                        objective.init_params(jax.random.PRNGKey(0)),
                        is_leaf=lambda x: hasattr(x, "value"))
  tokens = jax.random.normal(jax.random.PRNGKey(1), (4, 16, 3))
  labels = jnp.arange(4)
  mask = jnp.zeros((4, 16), bool).at[:, :5].set(True).at[0, 9].set(True)
  monkeypatch.setattr(co.mvtm, "sample_mask", lambda *a, **k: mask)
  rng = jax.random.PRNGKey(2)
  # Jitted, as the trainer runs them (one program each, not one per op).
  value, metrics = jax.jit(objective.loss)(params, tokens, labels, rng)
  _, _, _, head_rng = jax.random.split(rng, 4)
  z = jax.jit(BODY.apply)({"params": params["body"]}, tokens, mask, labels)
  per_token = jax.jit(objective.head_loss)(params["head"], tokens, z, head_rng)
  want = float(jnp.sum(per_token * mask) / mask.sum())
  assert float(value) == pytest.approx(want, rel=1e-5)
  assert float(metrics["masked_per_row"]) == pytest.approx(21 / 4)
  if head == "diffusion":  # the zero-initialised head predicts epsilon = 0
    # E[noise^2] = 1; the mean of 21 x 4 x 3 squared normals has sd 0.09.
    assert want == pytest.approx(1.0, abs=0.3)


def test_bad_objective_settings_are_named():
  with pytest.raises(ValueError, match="head 'flow'"):
    co.ContinuousMVTM(BODY, head="flow")
  with pytest.raises(ValueError, match="mask_ratio 'beta'"):
    co.ContinuousMVTM(BODY, mask_ratio="beta")
  with pytest.raises(ValueError, match="null_label"):
    co.ContinuousMVTM(BODY, label_dropout=0.1)


@pytest.mark.slow  # compiles sharded training steps
@pytest.mark.parametrize("head", co.HEADS)
def test_the_sharded_step_equals_one_device(head):
  objective = co.ContinuousMVTM(BODY, head=head, head_width=16, head_depth=1,
                                num_mixtures=2, label_dropout=0.25,
                                null_label=4)
  trainer = token_trainer.TokenTrainer(
      objective, optimizer=token_trainer.make_optimizer(
          learning_rate=1e-3, warmup_steps=1, total_steps=10))
  devices = jax.devices()
  reference, ref_metrics = th.sharded_step(trainer, (1, 1, 1), devices[:1],
                                           _latents())
  state, metrics = th.sharded_step(trainer, (2, 2, 2), devices, _latents())
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
      jax.device_get(state.params), jax.device_get(reference.params))
  assert ref_metrics["grad_norm"] > 0


def _trained(head, steps):
  """``(objective, params)`` after ``steps`` on toy latents: class ``c``'s
  tokens are all ``(c - 1.5) * [1, -1, 0.5]`` plus 0.05 noise."""
  objective = co.ContinuousMVTM(BODY, head=head, head_width=32, head_depth=2,
                                num_mixtures=2, label_dropout=0.1,
                                null_label=4)
  trainer = token_trainer.TokenTrainer(
      objective, optimizer=token_trainer.make_optimizer(
          learning_rate=3e-3, warmup_steps=10, total_steps=steps))
  pattern = jnp.array([1.0, -1.0, 0.5])

  def batch(rng):
    labels = jax.random.randint(rng, (32,), 0, 4)
    noise = 0.05 * jax.random.normal(jax.random.fold_in(rng, 1),
                                     (32, 4, 4, 3))
    latents = (labels[:, None, None, None] - 1.5) * pattern + noise
    return {"latents": latents, "labels": labels}
  state = jax.tree.map(lambda x: getattr(x, "value", x),
                       trainer.init(jax.random.PRNGKey(0)),
                       is_leaf=lambda x: hasattr(x, "value"))

  def body(state, rng):
    return trainer.train_step(state, batch(rng), rng)[0], None
  state, _ = jax.jit(lambda s: jax.lax.scan(
      body, s, jax.random.split(jax.random.PRNGKey(1), steps)))(state)
  return objective, state.ema_params, pattern


@pytest.mark.slow  # trains for several seconds
def test_a_trained_mixture_model_generates_its_classes_in_the_density_order():
  from maskgit_jax.decoding import continuous_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import continuous_sampling as cs  # pylint: disable=g-import-not-at-top
  objective, params, pattern = _trained("mixture", 300)
  labels = jnp.arange(8) % 4
  x, unknown = cs.initial(np.asarray(labels), 16, 3)
  out, _ = continuous_decode.decode(
      params, jnp.asarray(x), jnp.asarray(unknown), labels,
      jax.random.PRNGKey(3), predict=cs.Predict(BODY),
      draw=cs.MixtureDraw(objective.head_module), num_iter=4,
      order="density", choice_temperature=1.0)
  want = (labels[:, None, None] - 1.5) * pattern
  close = np.abs(np.asarray(out) - np.asarray(want)).max(-1) < 0.3
  # 300 steps: measured 126 of 128 tokens at their class's pattern (within
  # 6 noise standard deviations); a draw from the wrong component is rare.
  assert close.mean() >= 0.95, close.mean()


@pytest.mark.slow  # compiles a guided diffusion decode
def test_a_guided_diffusion_inpaint_keeps_the_known_tokens():
  from maskgit_jax.decoding import continuous_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import continuous_sampling as cs  # pylint: disable=g-import-not-at-top
  objective, params, _ = _trained("diffusion", 20)
  x = jax.random.normal(jax.random.PRNGKey(4), (2, 16, 3))
  unknown = jnp.zeros((2, 16), bool).at[:, 4:12].set(True)
  out, counts = continuous_decode.decode(
      params, x, unknown, jnp.array([0, 3]), jax.random.PRNGKey(5),
      predict=cs.Predict(BODY, null_label=4),
      draw=cs.DiffusionDraw(objective.head_module, steps=10, cfg_scale=2.0,
                            clip_x0=5.0), num_iter=3)
  np.testing.assert_array_equal(out[~unknown], x[~unknown])
  assert np.isfinite(out).all() and not np.allclose(out[unknown], x[unknown])
  assert (np.asarray(counts)[-1] == 0).all()
  with pytest.raises(ValueError, match="without guidance"):
    cs.MixtureDraw(co.ContinuousMVTM(BODY, head="mixture").head_module)(
        params, jax.random.PRNGKey(0), jnp.zeros((1, 16, 2, 32)))


@pytest.fixture(scope="module")
def vae_latents(tiny_vae, tmp_path_factory):
  """``(root, latents)``: a folder for this module's runs holding the
  shared tiny VAE (``root / "vae"``) and its cached latents."""
  workdir, latents = tiny_vae
  root = tmp_path_factory.mktemp("continuous")
  (root / "vae").symlink_to(workdir, target_is_directory=True)
  return root, latents


@pytest.fixture(scope="module")
def continuous_runs(vae_latents):
  """Both heads trained 4 steps on the tiny VAE's latents: the diffusion
  head through ``train.py``, the mixture head (density order) through the
  loop in this process."""
  from maskgit_jax.presets import continuous_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  root, latents = vae_latents
  done = th.run_tool(
      "train.py", "--config=configs/continuous_animal_mnist.py:tiny",
      f"--workdir={root / 'diffusion'}",
      f"--config.tokenizer_checkpoint={root / 'vae'}",
      "--config.num_train_steps=4", "--config.checkpoint_every_steps=4",
      "--config.preview_every_steps=2", f"--config.data.name=latents:{latents}")
  assert done.returncode == 0, done.stderr[-3000:]
  config = continuous_animal_mnist.get_config("tiny")
  config.update(tokenizer_checkpoint=str(root / "vae"), num_train_steps=4,
                checkpoint_every_steps=4, preview_every_steps=4)
  config.continuous.head = "mixture"
  config.sampling.update(cfg_scale=0.0, order="density",
                         choice_temperature=1.0)
  config.data.name = f"latents:{latents}"
  loop.train_and_evaluate(config, root / "mixture")
  return {"diffusion": root / "diffusion", "mixture": root / "mixture"}


@pytest.mark.slow  # trains a tokenizer and the stage
def test_train_py_trains_the_continuous_stage_and_records_the_scale(
    vae_latents, continuous_runs):
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  _, latents = vae_latents
  run = continuous_runs["diffusion"]
  saved = checkpointing.read_config(run)
  assert saved["stage"] == "continuous"
  with np.load(latents) as data:
    assert saved["latent_scale"] == pytest.approx(float(data["latent_scale"]))
  previews = sorted(p.name for p in (run / "previews").iterdir())
  assert previews == ["step_00000002.png", "step_00000004.png"]


@pytest.mark.slow  # trains a tokenizer and the stage
@pytest.mark.parametrize("head", ["diffusion", "mixture"])
def test_the_generator_samples_and_edits_with_either_head(continuous_runs,
                                                          head):
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  gen = sampling.load(continuous_runs[head], batch_size=4)
  assert isinstance(gen, sampling.ContinuousGenerator)
  samples = gen.sample([0, 1, 2], seed=3)
  size = gen.image_size
  assert samples.images.shape == (3, size, size, 3)
  assert samples.images.dtype == np.uint8
  assert samples.tokens.shape == (3, *gen.grid, gen.model.channels)
  # Row i depends on (seed, i), not on the batch it was decoded in.
  one_by_one = sampling.load(continuous_runs[head], batch_size=1).sample(
      [0, 1, 2], seed=3)
  np.testing.assert_allclose(one_by_one.tokens, samples.tokens, atol=1e-4)
  assert not np.allclose(samples.tokens[0], samples.tokens[1])
  image = samples.images[0]
  mask = np.zeros((size, size), bool)
  mask[:, : size // 2] = True
  filled = gen.inpaint(image, mask, label=1, seed=0)
  assert filled.shape == image.shape
  np.testing.assert_array_equal(filled[:, size // 2:], image[:, size // 2:])
  assert not np.array_equal(filled, image)
  edited = gen.edit(image, (0, 0, gen.factor, gen.factor), label=2)
  assert edited.shape == image.shape
  with pytest.raises(ValueError, match="density" if head == "diffusion"
                     else "without guidance"):
    gen.sample([0], **({"order": "density"} if head == "diffusion"
                       else {"cfg_scale": 1.0}))
  with pytest.raises(ValueError, match="label 99 is out of range"):
    gen.sample([99])


@pytest.mark.slow  # trains a tokenizer and the stage; two processes
def test_sample_py_edits_with_a_continuous_checkpoint(continuous_runs,
                                                      tmp_path):
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  run = continuous_runs["diffusion"]
  image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
  mask = np.zeros((16, 16), bool)
  mask[8:] = True
  imageio.write_image(tmp_path / "in.png", image)
  imageio.write_image(tmp_path / "mask.png",
                      np.repeat(mask[..., None], 3, -1).astype(np.uint8) * 255)
  done = th.run_tool(
      "sample.py", f"--checkpoint={run}", "--task=inpaint", "--label=1",
      f"--image={tmp_path / 'in.png'}", f"--mask={tmp_path / 'mask.png'}",
      "--steps=3", "--num_iter=2", f"--output={tmp_path / 'out.png'}")
  assert done.returncode == 0, done.stderr[-3000:]
  out = imageio.read_image(tmp_path / "out.png")
  np.testing.assert_array_equal(out[:8], image[:8])
  refused = th.run_tool("sample.py", f"--checkpoint={run}", "--labels=1",
                        "--top_k=5", f"--output={tmp_path / 'x.png'}")
  assert refused.returncode != 0
  assert ("--top_k is not an option of this checkpoint's "
          "ContinuousGenerator") in refused.stderr
  assert "Traceback" not in refused.stderr
  assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # trains a tokenizer
def test_latents_feed_the_continuous_stage_only(vae_latents, tmp_path):
  from maskgit_jax.presets import continuous_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  root, latents = vae_latents
  config = th.transformer_config(root / "vae", num_train_steps=1)
  config.data.name = f"latents:{latents}"
  with pytest.raises(ValueError, match="feed the continuous stage only"):
    loop.train_and_evaluate(config, tmp_path / "a")
  config = continuous_animal_mnist.get_config("tiny")
  config.update(tokenizer_checkpoint=str(root / "vae"), num_train_steps=1)
  config.data.name = "animal_mnist"
  with pytest.raises(ValueError, match="reads cached latents"):
    loop.train_and_evaluate(config, tmp_path / "b")
