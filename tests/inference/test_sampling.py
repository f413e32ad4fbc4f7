"""The Generator and sample.py: official parity, every task, bad inputs."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.decoding import editing
from maskgit_jax import sampling
from maskgit_jax.trainers import loop
from tests import train_helpers as th


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_tokenizer):
  """Tokenizer + transformer (with label dropout) trained a few steps."""
  root = tmp_path_factory.mktemp("tiny_run")
  (root / "tok").symlink_to(tiny_tokenizer)
  config = th.transformer_config(root / "tok")
  config.masking.label_dropout = 0.2
  loop.train_and_evaluate(config, root / "maskgit")
  return root


@pytest.fixture(scope="module")
def gen(tiny_run):
  return sampling.Generator.from_checkpoint(tiny_run / "maskgit")


def _images(n, size=16, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3),
                                              dtype=np.uint8)


def _cli(*args):
  return th.run_tool("sample.py", *args, num_devices=2, timeout=300)


# -- official parity ---------------------------------------------------------


@pytest.mark.slow  # trains or compiles for several seconds
def test_cli_reproduces_the_official_greedy_generation(parity, imported,
                                                       tmp_path):
  npz = tmp_path / "samples.npz"
  result = _cli(f"--checkpoint={imported}", "--greedy",
                "--choice_temperature=0", "--num_iter=8", "--labels=3,7",
                f"--output_npz={npz}", f"--output={tmp_path / 'grid.png'}")
  assert result.returncode == 0, result.stderr
  saved = np.load(npz)
  expected = parity.io["gen_greedy_t0_final_seqs"][:, -1, 1:]
  np.testing.assert_array_equal(saved["tokens"].reshape(2, -1), expected)
  assert saved["tokens"].dtype == np.int32
  assert saved["arr_0"].shape == (2, 16, 16, 3)  # ADM's layout
  assert saved["arr_0"].dtype == np.uint8
  np.testing.assert_array_equal(saved["arr_1"], [3, 7])
  assert (tmp_path / "grid.png").exists()


def test_generator_images_match_the_official_images(parity, imported):
  gen = sampling.Generator.from_checkpoint(imported)
  samples = gen.sample([3, 7], greedy=True, choice_temperature=0.0,
                       num_iter=8)
  np.testing.assert_allclose(samples.float_images,
                             parity.io["gen_greedy_t0_images"], rtol=0,
                             atol=5e-5)
  np.testing.assert_array_equal(
      samples.tokens.reshape(2, -1),
      parity.io["gen_greedy_t0_final_seqs"][:, -1, 1:])


# -- tasks on a tiny trained checkpoint -------------------------------------


@pytest.mark.slow  # trains or compiles for several seconds
def test_generate_shapes_and_seeds(gen, tiny_run):
  labels = [0, 3, 9]
  a = gen.sample(labels, seed=1)
  assert a.images.shape == (3, 16, 16, 3) and a.images.dtype == np.uint8
  assert a.tokens.shape == (3, 8, 8) and a.tokens.dtype == np.int32
  assert a.tokens.min() >= 0 and a.tokens.max() < gen.tokenizer.codebook_size
  np.testing.assert_array_equal(a.labels, labels)
  np.testing.assert_array_equal(gen.generate(labels, seed=1), a.images)
  assert not np.array_equal(gen.generate(labels, seed=2), a.images)
  # Sample i depends on (seed, i): not on the batch size or device count.
  small = sampling.Generator.from_checkpoint(tiny_run / "maskgit",
                                             batch_size=1,
                                             devices=gen.devices[:1])
  np.testing.assert_array_equal(small.sample(labels, seed=1).tokens, a.tokens)


@pytest.mark.slow  # trains or compiles for several seconds
def test_previews_the_generator_and_sample_py_sample_alike(gen, tiny_run,
                                                          tmp_path):
  """One decode definition: the training preview, ``Generator.sample`` and
  ``sample.py`` draw the same samples for the same settings and seed 0."""
  import types  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import tasks  # pylint: disable=g-import-not-at-top
  settings = dict(cfg_scale=2.0, temperature=0.9, schedule="linear",
                  top_k=5, choice_temperature=3.0, min_p=0.05)
  labels = np.array([1, 4, 7, 2, 0, 9, 3, 3], np.int32)
  generated = gen.sample(labels, seed=0, **settings)

  config = ml_collections.ConfigDict(
      checkpointing.read_config(tiny_run / "maskgit"))
  config.decode.update(settings)
  task = tasks.transformer_task(config)
  preview = task.preview(
      types.SimpleNamespace(ema_params=gen.params["transformer"]),
      {"labels": labels}, {"tokenizer": gen.params["tokenizer"]})
  np.testing.assert_allclose(np.asarray(preview),
                             np.clip(generated.float_images, 0, 1),
                             rtol=0, atol=1e-5)

  npz = tmp_path / "cli.npz"
  result = _cli(f"--checkpoint={tiny_run / 'maskgit'}", "--seed=0",
                "--labels=" + ",".join(map(str, labels)),
                f"--output_npz={npz}",
                *(f"--{k}={v}" for k, v in settings.items()))
  assert result.returncode == 0, result.stderr[-2000:]
  np.testing.assert_array_equal(np.load(npz)["tokens"], generated.tokens)
  plain = gen.sample(labels, seed=0)
  assert not np.array_equal(plain.tokens, generated.tokens)  # settings act


def test_samplers(gen):
  labels = [1, 4, 7, 2]
  official = gen.sample(labels, seed=3, sampler="gumbel")
  cdf = gen.sample(labels, seed=3)  # the default
  assert gen.defaults.sampler == "cdf"
  assert not np.array_equal(cdf.tokens, official.tokens)
  for sampler, drawn in (("gumbel", official), ("cdf", cdf)):
    # Reproducible per (seed, i), valid codes.
    np.testing.assert_array_equal(
        gen.sample(labels[:2], seed=3, sampler=sampler).tokens,
        drawn.tokens[:2])
    assert 0 <= drawn.tokens.min()
    assert drawn.tokens.max() < gen.tokenizer.codebook_size
  with pytest.raises(ValueError, match="sampler must be one of"):
    gen.sample(labels, sampler="fast")


def test_unconditional_samples_condition_on_the_null_class(gen, monkeypatch):
  layout = gen.transformer.layout
  seen = []
  decode = gen.decode_sequences
  monkeypatch.setattr(gen, "decode_sequences",
                      lambda s, *a, **k: seen.append(s) or decode(s, *a, **k))
  got = gen.sample_unconditional(3, seed=5, num_iter=4)
  assert got.labels.tolist() == [gen.null_label] * 3
  # What the network saw: the layout's own sequences (the null class
  # token, then masks), decoded with guidance off.
  null = np.full(3, gen.null_label)
  sequences = np.asarray(layout.masked_sequence(null, gen.grid[0] * gen.grid[1]))
  assert (sequences[:, 0] == layout.codebook_size + gen.null_label).all()
  np.testing.assert_array_equal(seen[0], sequences)
  monkeypatch.undo()
  want = gen.decode_sequences(sequences, null, 5, gen.checked_options(
      num_iter=4, cfg_scale=0.0))
  np.testing.assert_array_equal(got.tokens, want.tokens)
  with pytest.raises(ValueError, match="cfg_scale=2.0: unconditional"):
    gen.sample_unconditional(3, cfg_scale=2.0)
  with pytest.raises(ValueError, match="num_samples must be >= 1, got 0"):
    gen.sample_unconditional(0)


def test_the_unconditional_label_is_the_null_class_or_the_only_one():
  from maskgit_jax.runtime import restore  # pylint: disable=g-import-not-at-top
  assert restore.unconditional_label(11, 10) == 10  # guidance-trained
  assert restore.unconditional_label(1, None) == 0  # one class
  with pytest.raises(ValueError, match="10 classes and no null class"):
    restore.unconditional_label(10, None)


@pytest.mark.slow  # trains or compiles for several seconds
def test_classifier_free_guidance_scale_zero_is_plain_sampling(gen):
  from maskgit_jax.decoding import parallel_decode  # pylint: disable=g-import-not-at-top
  from maskgit_jax.models import transformer as transformer_lib  # pylint: disable=g-import-not-at-top
  layout = gen.transformer.layout
  plain_fn = transformer_lib.CodebookLogits(gen.transformer)
  guided_fn = sampling.GuidedLogits(
      plain_fn, null_token=layout.codebook_size + gen.null_label,
      mask_id=layout.mask_id)
  params = gen.params["transformer"]
  zero = {"model": params, "cfg_scale": 0.0}
  inputs = layout.masked_sequence(np.array([1, 2, 3, 4]), 64)
  np.testing.assert_array_equal(jax.jit(guided_fn)(zero, inputs),
                                jax.jit(plain_fn)(params, inputs))
  rng = jax.random.PRNGKey(3)
  kwargs = dict(num_iter=8, mask_token_id=layout.mask_id)
  plain = parallel_decode.decode(params, inputs, rng,
                                 tokens_to_logits=plain_fn, **kwargs)
  guided = parallel_decode.decode(zero, inputs, rng,
                                  tokens_to_logits=guided_fn, **kwargs)
  np.testing.assert_array_equal(guided.sequences, plain.sequences)
  # A real scale moves the logits (the model has seen 6 steps only, so the
  # sampled tokens may not change yet).
  five = {"model": params, "cfg_scale": 5.0}
  assert not np.allclose(jax.jit(guided_fn)(five, inputs),
                         jax.jit(plain_fn)(params, inputs))
  # Through the Generator: 0 is plain sampling, and runs end to end guided.
  labels = [1, 2, 3, 4]
  base = gen.sample(labels, seed=3, cfg_scale=0.0).tokens
  np.testing.assert_array_equal(gen.sample(labels, seed=3).tokens, base)
  assert gen.sample(labels, seed=3, cfg_scale=5.0).tokens.shape == base.shape


def test_guided_logits_constant_and_linear_ramp():
  def fake_logits(params, ids):  # the class token id, broadcast
    del params
    return jnp.broadcast_to(ids[:, :1, None].astype(jnp.float32),
                            ids.shape + (3,))

  ids = jnp.array([[5, 9, 9, 1, 2], [6, 9, 9, 9, 9]])  # mask id 9, null 7
  for ramp, share in (("constant", [1.0, 1.0]), ("linear", [0.5, 0.0])):
    fn = sampling.GuidedLogits(fake_logits, null_token=7, mask_id=9,
                               ramp=ramp)
    out = fn({"model": None, "cfg_scale": 2.0}, ids)
    cond = np.array([5.0, 6.0])
    expected = cond + 2.0 * np.array(share) * (cond - 7.0)
    np.testing.assert_allclose(out[:, 0, 0], expected)


@pytest.mark.slow  # trains or compiles for several seconds
def test_the_sampler_options_run_through_the_generator(gen):
  labels = [0, 1, 2, 3]
  base = gen.sample(labels, seed=4).tokens
  for options in (dict(order="halton", schedule="arccos", roll_order=True),
                  dict(order="random"),
                  dict(order="mdlm", remask="cap", remask_eta=0.05),
                  dict(order="mdlm", remask="conf"),
                  dict(top_k=3, top_p=0.8, temperature_schedule="linear",
                       final_temperature=0.5),
                  dict(cfg_scale=2.0, cfg_schedule="power_cosine",
                       cfg_power=2.5),
                  dict(cfg_scale=2.0, cfg_schedule="step_linear")):
    tokens = gen.sample(labels, seed=4, **options).tokens
    assert tokens.shape == base.shape
    assert 0 <= tokens.min() and tokens.max() < gen.tokenizer.codebook_size
  # The defaults are untouched by options used in between.
  np.testing.assert_array_equal(gen.sample(labels, seed=4).tokens, base)


def test_rejection_sampling_keeps_the_best_candidate(gen):
  labels = np.array([2, 5])

  def brightness(images):  # bright images look like classes 2 and 5
    logits = np.zeros((len(images), gen.num_classes))
    logits[:, labels] = images.reshape(len(images), -1).mean(-1)[:, None] / 16
    return logits

  kept = gen.sample(labels, seed=4, classifier=brightness,
                    acceptance_rate=0.25)
  candidates = gen.sample(np.repeat(labels, 4), seed=4).images
  means = candidates.reshape(2, 4, -1).mean(-1)
  np.testing.assert_array_equal(kept.images,
                                candidates.reshape(2, 4, 16, 16, 3)[
                                    np.arange(2), means.argmax(-1)])


def test_inpaint_keeps_pixels_outside_the_region(gen):
  images = _images(2)
  mask = np.zeros((16, 16), bool)
  mask[5:9, 6:11] = True
  out = gen.inpaint(images, mask, label=[1, 4], seed=0)
  assert out.shape == images.shape and out.dtype == np.uint8
  region = editing.token_mask_to_pixels(
      editing.pixel_mask_to_token_mask(mask, gen.factor), gen.factor)
  np.testing.assert_array_equal(out[:, ~region], images[:, ~region])
  assert not np.array_equal(out[:, region], images[:, region])
  np.testing.assert_array_equal(gen.inpaint(images, mask, label=[1, 4]), out)
  assert not np.array_equal(gen.inpaint(images, mask, label=[1, 4], seed=9),
                            out)
  single = gen.inpaint(images[0], mask)  # the null class: no label needed
  assert single.shape == (16, 16, 3)


def test_edit_changes_only_the_widened_box(gen):
  image = _images(1)[0]
  box = (4, 4, 6, 6)
  out = gen.edit(image, box, label=7, seed=0)
  region = editing.token_mask_to_pixels(
      editing.box_to_token_mask(box, (16, 16), gen.factor, widen=1),
      gen.factor)
  assert out.shape == image.shape
  np.testing.assert_array_equal(out[~region], image[~region])
  np.testing.assert_array_equal(gen.edit(image, box, label=7, seed=0), out)


def test_outpaint_and_panorama_preserve_the_input(gen):
  image = _images(1, seed=1)[0]
  out = gen.outpaint(image, (2, 4, 6, 8), label=3, seed=0)
  assert out.shape == (16 + 6, 16 + 14, 3)
  np.testing.assert_array_equal(out[2:18, 6:22], image)
  np.testing.assert_array_equal(
      gen.outpaint(image, (2, 4, 6, 8), label=3, seed=0), out)
  wide = gen.panorama(image, 40, label=3, seed=0)
  assert wide.shape == (16, 40, 3)
  np.testing.assert_array_equal(wide[:, :16], image)
  assert wide[:, 16:].std() > 0  # the new area was generated, not left black


# -- export ------------------------------------------------------------------


def _stored_bytes(folder):
  return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_export_samples_like_the_workdir_with_a_quarter_of_the_bytes(
    gen, tiny_run, tmp_path, capsys):
  from maskgit_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  from maskgit_jax.tools import export
  out = tmp_path / "exported"
  assert export.main([f"--workdir={tiny_run / 'maskgit'}",
                      f"--out={out}"]) == 0
  assert "exported transformer step" in capsys.readouterr().out
  exported = sampling.Generator.from_checkpoint(out)
  np.testing.assert_array_equal(exported.generate([1, 2], seed=3),
                                gen.generate([1, 2], seed=3))
  for folder in (out, out / "tokenizer"):
    assert set(checkpointing.restore_state_tree(folder)) == {"step", "params"}
  step = checkpointing.latest_step(tiny_run / "maskgit")
  assert checkpointing.read_config(out)["export"]["step"] == step
  source = tiny_run / "maskgit" / "checkpoints" / str(step)
  assert _stored_bytes(out / "checkpoints") < _stored_bytes(source) / 2.5
  # Refusals, in one line and with nothing written.
  assert export.main([f"--workdir={tiny_run / 'maskgit'}",
                      f"--out={out}"]) == 2
  assert "already holds an export" in capsys.readouterr().err
  assert export.main([f"--workdir={tmp_path / 'none'}",
                      f"--out={tmp_path / 'x'}"]) == 2
  assert "no checkpoint" in capsys.readouterr().err
  assert not (tmp_path / "x").exists()


# -- bad input ---------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(gen, tiny_run, imported, tmp_path):
  with pytest.raises(FileNotFoundError, match="not found"):
    sampling.Generator.from_checkpoint(tmp_path / "nothing")
  with pytest.raises(ValueError, match="'tokenizer' checkpoint"):
    sampling.Generator.from_checkpoint(tiny_run / "tok")
  with pytest.raises(ValueError, match="label 10 is out of range"):
    gen.generate([0, 10])
  with pytest.raises(ValueError, match="label -1 is out of range"):
    gen.edit(_images(1)[0], (0, 0, 4, 4), label=-1)
  with pytest.raises(ValueError, match="not a multiple of the token factor"):
    gen.inpaint(_images(1, size=15)[0], np.ones((15, 15), bool))
  with pytest.raises(ValueError, match="works on 16x16 images"):
    gen.inpaint(_images(1, size=32)[0], np.ones((32, 32), bool))
  with pytest.raises(ValueError, match="outside the 16x16 image"):
    gen.edit(_images(1)[0], (10, 10, 8, 4), label=0)
  with pytest.raises(ValueError, match="does not match the 16x16 image"):
    gen.inpaint(_images(1)[0], np.ones((20, 20), bool))
  with pytest.raises(ValueError, match="mask is empty"):
    gen.inpaint(_images(1)[0], np.zeros((16, 16), bool))
  with pytest.raises(ValueError, match="num_iter must be a positive"):
    gen.generate([0], num_iter=0)
  with pytest.raises(TypeError, match="unknown decode options \\['steps'\\]"):
    gen.generate([0], steps=8)
  with pytest.raises(ValueError, match="must be uint8"):
    gen.inpaint(_images(1)[0] / 255.0, np.ones((16, 16), bool))
  with pytest.raises(ValueError, match="multiples of the token factor"):
    gen.outpaint(_images(1)[0], 3)
  official = sampling.Generator.from_checkpoint(imported)
  with pytest.raises(ValueError, match="cfg_scale needs a model trained"):
    official.generate([0], cfg_scale=1.0)
  with pytest.raises(ValueError, match="class-conditional: pass label"):
    official.inpaint(_images(1)[0], np.ones((16, 16), bool))


@pytest.mark.parametrize("args, message", [
    (("--checkpoint={missing}", "--labels=1"), "not found"),
    (("--checkpoint={run}", "--labels=1,12"), "label 12 is out of range"),
    (("--checkpoint={run}", "--labels=1", "--num_iter=-1"),
     "num_iter must be a positive integer"),
    (("--checkpoint={run}", "--task=edit", "--image={image}",
      "--box=0,0,40,4", "--label=1"), "outside the 16x16 image"),
    (("--checkpoint={run}", "--labels=1", "--sampler=fast"),
     "value should be one of <gumbel|cdf>"),
])
@pytest.mark.slow
def test_cli_errors_are_one_line(tiny_run, tmp_path, args, message):
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  image = imageio.write_image(tmp_path / "in.png", _images(1)[0])
  names = dict(missing=tmp_path / "missing", run=tiny_run / "maskgit",
               image=image)
  result = _cli(*(a.format(**names) for a in args),
                f"--output={tmp_path / 'out.png'}")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error: ") and message in lines[-1], lines
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_quickstart_notebook_runs(tiny_run, monkeypatch):
  import nbclient  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv("MASKGIT_CHECKPOINT", str(tiny_run / "maskgit"))
  monkeypatch.setenv("PYTHONPATH", str(th.REPO))
  path = th.REPO / "notebooks" / "quickstart.ipynb"
  notebook = nbformat.read(path, as_version=4)
  nbclient.NotebookClient(
      notebook, timeout=600, kernel_name="python3",
      resources={"metadata": {"path": str(path.parent)}}).execute()
  images = [o for cell in notebook.cells if cell.cell_type == "code"
            for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})]
  assert len(images) == 4  # samples, inpaint, edit, panorama


@pytest.mark.parametrize("seed", [0, 7, 2**31 - 1, -3, 2**31 + 5, 2**40])
def test_row_keys_are_fold_in_of_the_seed_key(seed):
  """The one-program key derivation equals ``fold_in(PRNGKey(seed), i)``."""
  from maskgit_jax.inference import token_images  # pylint: disable=g-import-not-at-top
  rows = np.array([0, 1, 5, 1000], np.uint32)
  expected = [jax.random.fold_in(jax.random.PRNGKey(seed), int(i))
              for i in rows]
  np.testing.assert_array_equal(token_images.row_keys(seed, rows),
                                np.stack(expected))
