"""Every config file and preset x variant builds; its models construct."""

import importlib
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from maskgit_jax import presets
from maskgit_jax.decoding.decode_options import DecodeOptions
from maskgit_jax.models import discriminator as discriminator_lib
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.trainers import tasks
from maskgit_jax.trainers import tokenizer_step

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
CONFIG_FILES = sorted(p.stem for p in CONFIG_DIR.glob("*.py")
                      if p.stem not in ("__init__", "common"))
MODULES = ([f"configs.{name}" for name in CONFIG_FILES] +
           [f"maskgit_jax.presets.{name}" for name in presets.NAMES])
CASES = [(name, variant) for name in MODULES
         for variant in importlib.import_module(name).VARIANTS]


def _models_and_inputs(config):
  """``[(module, example input)]`` for the config's stage."""
  if config.stage == "transformer":
    seq_len = (config.image_size // config.token_factor) ** 2 + 1
    assert seq_len == config.model.max_position_embeddings
    return [(transformer_lib.Transformer(**config.model),
             jnp.zeros((2, seq_len), jnp.int32))]
  if config.stage == "tokenizer":
    tokenizer_step.LossWeights(**config.losses)  # names and values validate
    images = jnp.zeros((2, config.image_size, config.image_size, 3))
    return [(vqgan_lib.VQGAN(**config.model), images),
            (discriminator_lib.StyleGANDiscriminator(**config.discriminator),
             images)]
  if config.stage == "critic":  # its own body, on the preset's layout
    from maskgit_jax.models import critic as critic_lib  # pylint: disable=g-import-not-at-top
    assert config.critic.label in ("resampled", "changed")
    body = transformer_lib.Transformer(**config.model)
    return [(critic_lib.TokenCritic(body),
             jnp.zeros((2, config.model.max_position_embeddings), jnp.int32))]
  if config.stage == "ar":
    from maskgit_jax.models import causal_transformer  # pylint: disable=g-import-not-at-top
    grid = config.image_size // config.token_factor
    assert config.model.num_tokens == grid * grid
    return [(causal_transformer.CausalTransformer(**config.model),
             jnp.zeros((2, grid * grid), jnp.int32))]
  if config.stage == "mage":
    from maskgit_jax.models import mage  # pylint: disable=g-import-not-at-top
    grid = config.image_size // config.token_factor
    assert config.model.num_tokens == grid * grid
    return [(mage.MAGE(**config.model),
             jnp.zeros((2, grid * grid + 1), jnp.int32))]
  if config.stage == "continuous":  # the body, called as the decode does
    from maskgit_jax.models import continuous_transformer  # pylint: disable=g-import-not-at-top
    from maskgit_jax.trainers import continuous_objectives  # pylint: disable=g-import-not-at-top
    grid = config.image_size // config.token_factor
    assert config.model.num_tokens == grid * grid
    body = continuous_transformer.ContinuousTransformer(**config.model)
    continuous_objectives.ContinuousMVTM(  # the objective's fields validate
        body, null_label=config.model.num_classes, **config.continuous)
    return [(_Unmasked(body),
             jnp.zeros((2, grid * grid, config.model.channels)))]
  raise AssertionError(f"unknown stage {config.stage!r}")


class _Unmasked(nn.Module):
  """A continuous body with nothing masked and class 0, on ``x`` alone."""

  body: nn.Module

  def __call__(self, x):
    return self.body(x, jnp.zeros(x.shape[:2], bool),
                     jnp.zeros(x.shape[:1], jnp.int32))


@pytest.mark.parametrize("name, variant", CASES)
def test_config_builds(name, variant):
  config = importlib.import_module(name).get_config(variant)
  assert config.variant == variant
  assert config.stage in tasks.STAGES
  if "decode" in config:  # every decode option, valid (one definition)
    assert set(config.decode) == {f.name for f in DecodeOptions.fields()}
    DecodeOptions.from_config(config.decode.to_dict())
  for model, example in _models_and_inputs(config):
    out = jax.eval_shape(model.init, jax.random.PRNGKey(0), example)
    assert jax.tree_util.tree_leaves(out["params"])


@pytest.mark.slow  # trains or compiles for several seconds
@pytest.mark.parametrize("name", MODULES)
def test_tiny_variant_runs(name):
  config = importlib.import_module(name).get_config("tiny")
  for model, example in _models_and_inputs(config):  # jitted, as trained
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), example)
    out = jax.jit(model.apply)(variables, example)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape[0] == example.shape[0]
    assert bool(jnp.isfinite(out).all())


def test_unknown_variant_is_named():
  for name in MODULES:
    with pytest.raises(ValueError, match="unknown variant 'huge'"):
      importlib.import_module(name).get_config("huge")


def test_presets_by_name():
  config = presets.get_config("maskgit_imagenet", "tiny")
  assert config.stage == "transformer" and config.variant == "tiny"
  with pytest.raises(ValueError, match="unknown preset 'imagenet'"):
    presets.get_config("imagenet")


def test_override_sets_dotted_fields_and_names_a_missing_section():
  from maskgit_jax.presets import common  # pylint: disable=g-import-not-at-top
  config = common.get_config()
  assert common.override(config, {"data.split": "test", "seed": 3}) is config
  assert config.data.split == "test" and config.seed == 3
  with pytest.raises(KeyError, match="nope"):
    common.override(config, {"nope.field": 1})


@pytest.mark.parametrize("name, variant", CASES)
def test_checkpoint_fields_take_a_path_on_the_command_line(name, variant):
  """``--config.X_checkpoint=PATH`` needs a str-typed field (a None field
  cannot be overridden: ml_collections refuses its NoneType)."""
  config = importlib.import_module(name).get_config(variant)
  for key in config.keys():
    if key.endswith("_checkpoint"):
      assert config.get_type(key) is str, key


@pytest.mark.parametrize("name", ["maskgit_jax.presets.maskgit_imagenet",
                                  "maskgit_jax.presets.ar_animal_mnist",
                                  "maskgit_jax.presets.mage_imagenet"])
def test_token_positions_follow_an_image_size_override(name):
  config = importlib.import_module(name).get_config(None)
  config.lock()  # as train.py holds it
  config.image_size = config.image_size // 2
  tokens = (config.image_size // config.token_factor) ** 2
  saved = config.to_dict()["model"]  # what a checkpoint records
  assert saved.get("max_position_embeddings", tokens + 1) == tokens + 1
  assert saved.get("num_tokens", tokens) == tokens


def test_a_size_the_model_could_not_sample_is_refused_in_one_line():
  from maskgit_jax.trainers import tasks  # pylint: disable=g-import-not-at-top
  assert tasks.check_grid(128, 16, 64, "positions") == 8
  with pytest.raises(ValueError, match=r"makes 8x8 tokens, but positions is "
                     r"256") as error:
    tasks.check_grid(128, 16, 256, "positions")
  assert "\n" not in str(error.value)
  with pytest.raises(ValueError, match="multiple of the factor"):
    tasks.check_grid(120, 16, 49, "positions")
