"""The autoregressive prior: causality, KV-cached sampling, loss, sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from maskgit_jax.decoding import ar_decode
from maskgit_jax.models import causal_transformer as causal_lib
from maskgit_jax.trainers import token_objectives
from tests import helpers
from tests import train_helpers as th

MODEL = causal_lib.CausalTransformer(
    codebook_size=24, num_classes=5, num_tokens=16, hidden_size=32,
    num_layers=2, num_heads=4, mlp_dim=64)
LAYOUT = MODEL.layout
NULL = LAYOUT.codebook_size + 4  # class 4 plays the null class
APPLY = helpers.jit_apply(MODEL)


@pytest.fixture(scope="module")
def params():
  return MODEL.init(jax.random.PRNGKey(0),
                    jnp.zeros((1, MODEL.num_tokens), jnp.int32))["params"]


def _inputs(seed, batch=3):
  tokens = jax.random.randint(jax.random.PRNGKey(seed),
                              (batch, MODEL.num_tokens), 0, 24)
  return causal_lib.next_token_inputs(jnp.arange(batch) % 4, tokens, LAYOUT)


@settings(max_examples=8, deadline=None)
@given(position=st.integers(1, MODEL.num_tokens - 1),
       seed=st.integers(0, 2**16))
def test_logits_before_a_change_do_not_move(params, position, seed):
  ids = _inputs(seed)
  changed = ids.at[:, position:].set((ids[:, position:] + 7) % 24)
  a = APPLY({"params": params}, ids)
  b = APPLY({"params": params}, changed)
  np.testing.assert_array_equal(a[:, :position], b[:, :position])
  assert not np.allclose(a[:, position:], b[:, position:])


@pytest.mark.slow  # trains or compiles for several seconds
def test_cached_steps_equal_the_full_pass(params):
  ids = _inputs(1)
  full = APPLY({"params": params}, ids)
  cache = MODEL.init_cache(ids.shape[0])
  for t in range(MODEL.num_tokens):
    step, cache = APPLY({"params": params}, ids[:, t:t + 1], cache, t,
                        method="extend")
    np.testing.assert_allclose(step[:, 0], full[:, t], rtol=1e-5, atol=1e-5)
  # A chunk of positions at once against the cache is the same again.
  cache = MODEL.init_cache(ids.shape[0])
  head, cache = APPLY({"params": params}, ids[:, :5], cache, 0,
                      method="extend")
  tail, _ = APPLY({"params": params}, ids[:, 5:], cache, 5,
                  method="extend")
  np.testing.assert_allclose(jnp.concatenate([head, tail], 1), full,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options", [
    dict(),
    dict(temperature=0.7, top_k=5),
    dict(top_p=0.8),
    dict(guided=True, cfg_scale=2.0, null_token=NULL),
])
def test_kv_cached_sampling_equals_recomputing(params, options):
  sequence = LAYOUT.masked_sequence(jnp.array([0, 1, 2, 3]),
                                    MODEL.num_tokens)
  for seed in range(3):
    rng = jax.random.PRNGKey(seed)
    cached = ar_decode.decode(params, sequence, rng, model=MODEL, **options)
    again = ar_decode.decode_recompute(params, sequence, rng, model=MODEL,
                                       **options)
    np.testing.assert_array_equal(cached, again)
    assert (cached[:, 1:] < 24).all() and (cached[:, 1:] >= 0).all()
    np.testing.assert_array_equal(cached[:, 0], sequence[:, 0])
    assert len(np.unique(np.asarray(cached[:, 1:]))) > 3  # sampled


def test_top_k_one_is_the_greedy_decode(params):
  sequence = LAYOUT.masked_sequence(jnp.array([2]), MODEL.num_tokens)
  out = ar_decode.decode(params, sequence, jax.random.PRNGKey(0), model=MODEL,
                         top_k=1)
  ids = np.asarray(out)
  logits = APPLY({"params": params}, ids[:, :MODEL.num_tokens])
  np.testing.assert_array_equal(ids[:, 1:], np.argmax(logits, -1))


def test_known_prefix_is_kept_and_conditions_the_rest(params):
  tokens = jax.random.randint(jax.random.PRNGKey(3), (2, MODEL.num_tokens),
                              0, 24)
  keep = jnp.arange(MODEL.num_tokens) < 6
  sequence = LAYOUT.make_sequence(jnp.array([1, 2]), tokens,
                                  mask=jnp.broadcast_to(~keep, tokens.shape))
  rng = jax.random.PRNGKey(4)
  out = ar_decode.decode(params, sequence, rng, model=MODEL)
  np.testing.assert_array_equal(out[:, 1:7], tokens[:, :6])
  np.testing.assert_array_equal(
      out, ar_decode.decode_recompute(params, sequence, rng, model=MODEL))
  ar_decode.check_prefix(np.asarray(sequence), LAYOUT.mask_id)
  holes = np.asarray(sequence).copy()
  holes[1, 3] = LAYOUT.mask_id
  with pytest.raises(ValueError, match="row 1: token 2 is unknown"):
    ar_decode.check_prefix(holes, LAYOUT.mask_id)


def test_next_token_loss_equals_a_hand_computation(params):
  tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3]])
  inputs = causal_lib.next_token_inputs(jnp.array([2]), jnp.asarray(tokens),
                                        LAYOUT)
  np.testing.assert_array_equal(inputs[0, 0], LAYOUT.codebook_size + 2)
  np.testing.assert_array_equal(inputs[0, 1:], tokens[0, :-1])
  logits = np.asarray(APPLY({"params": params}, inputs), np.float64)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  picked = np.take_along_axis(log_probs, tokens[..., None], -1)[..., 0]
  loss, metrics = token_objectives.next_token_loss(jnp.asarray(logits, jnp.float32),
                                          jnp.asarray(tokens))
  np.testing.assert_allclose(loss, -picked.mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"],
                             (logits.argmax(-1) == tokens).mean())
  smoothed, _ = token_objectives.next_token_loss(jnp.asarray(logits, jnp.float32),
                                        jnp.asarray(tokens), 0.1)
  expected = -(0.9 * picked + 0.1 * log_probs.mean(-1)).mean()
  np.testing.assert_allclose(smoothed, expected, rtol=1e-5)


def _one_step(mesh_shape, devices):
  return th.objective_step(
      token_objectives.NextToken(MODEL, label_dropout=0.25, null_label=4),
      mesh_shape, devices)


@pytest.mark.slow  # trains or compiles for several seconds
def test_sharded_step_equals_one_device():
  devices = jax.devices()
  reference, ref_metrics = _one_step((1, 1, 1), devices[:1])
  for shape in [(8, 1, 1), (2, 2, 2)]:
    state, metrics = _one_step(shape, devices)
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"],
                               rtol=1e-5)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
        jax.device_get(state.params), jax.device_get(reference.params))
  assert np.isfinite(ref_metrics["loss"]) and ref_metrics["grad_norm"] > 0


# -- the stage, the ARGenerator and sample.py --------------------------------


@pytest.fixture(scope="module")
def ar_run(tmp_path_factory, tiny_tokenizer):
  """A tiny tokenizer, then the ``ar`` stage (label dropout) on its tokens."""
  from maskgit_jax.presets import ar_animal_mnist  # pylint: disable=g-import-not-at-top
  from maskgit_jax.trainers import loop  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("ar_run")
  (root / "tok").symlink_to(tiny_tokenizer)
  config = ar_animal_mnist.get_config("tiny")
  config.tokenizer_checkpoint = str(root / "tok")
  config.ar.label_dropout = 0.2
  config.sampling.cfg_scale = 1.0
  metrics = loop.train_and_evaluate(config, root / "ar")
  assert np.isfinite(metrics["loss"]) and 0 <= metrics["accuracy"] <= 1
  assert len(list((root / "ar" / "previews").glob("*.png"))) == 2
  return root


@pytest.mark.slow  # trains or compiles for several seconds
def test_load_gives_a_prior_that_completes_the_bottom(ar_run):
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  gen = sampling.load(ar_run / "ar", batch_size=4)
  assert isinstance(gen, sampling.ARGenerator)
  with pytest.raises(ValueError, match="holds an autoregressive prior"):
    sampling.Generator.from_checkpoint(ar_run / "ar")
  assert gen.null_label == 10 and gen.defaults.cfg_scale == 1.0
  a = gen.sample([0, 3, 5], seed=1)
  assert a.tokens.shape == (3, 8, 8) and a.images.shape == (3, 16, 16, 3)
  # Sample i depends on (seed, i): the same in a batch of one.
  first = gen.sample([0], seed=1)
  np.testing.assert_array_equal(first.tokens[0], a.tokens[0])
  image = a.images[1]
  done = gen.complete(image, keep_rows=3, label=3, seed=2, top_k=5)
  kept = 3 * gen.factor
  np.testing.assert_array_equal(done[:kept - 2], image[:kept - 2])
  box = np.zeros((16, 16), bool)
  box[4:8, 4:8] = True
  with pytest.raises(ValueError, match="only complete the end"):
    gen.inpaint(image, box, label=3)
  # Editing only where it works: no box edit, outpainting or panorama.
  assert not any(hasattr(gen, m) for m in ("edit", "outpaint", "panorama"))
  with pytest.raises(ValueError, match="unknown sampling option"):
    gen.sample([1], num_iter=8)


@pytest.mark.slow  # trains or compiles for several seconds
def test_sample_cli_on_a_prior(ar_run, tmp_path):
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top

  def cli(*args):
    return th.run_tool("sample.py", f"--checkpoint={ar_run / 'ar'}", *args,
                       timeout=300)

  image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
  imageio.write_image(tmp_path / "in.png", image)
  done = cli("--task=complete", f"--image={tmp_path / 'in.png'}",
             "--keep_rows=4", "--label=2", "--top_p=0.9",
             f"--output={tmp_path / 'out.png'}")
  assert done.returncode == 0, done.stderr
  assert imageio.read_image(tmp_path / "out.png").shape == (16, 16, 3)
  refused = cli("--labels=1", "--num_iter=8", f"--output={tmp_path / 'x.png'}")
  assert refused.returncode != 0
  assert "--num_iter is not an option of this checkpoint's ARGenerator" \
      in refused.stderr
  assert "Traceback" not in refused.stderr
  assert not (tmp_path / "x.png").exists()
