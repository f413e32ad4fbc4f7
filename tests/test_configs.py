"""Every config file x variant builds, and its model is constructible."""

import importlib
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from maskgit_jax.models import transformer as transformer_lib

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
CONFIG_FILES = sorted(p.stem for p in CONFIG_DIR.glob("*.py")
                      if p.stem not in ("__init__", "common"))
CASES = [(name, variant) for name in CONFIG_FILES
         for variant in importlib.import_module(f"configs.{name}").VARIANTS]


@pytest.mark.parametrize("name, variant", CASES)
def test_config_builds(name, variant):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  assert isinstance(config, ml_collections.ConfigDict)
  assert config.variant == variant
  if config.stage == "transformer":
    model = transformer_lib.Transformer(**config.model)
    seq_len = (config.image_size // config.token_factor) ** 2 + 1
    assert seq_len == config.model.max_position_embeddings
    out = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                         jnp.zeros((2, seq_len), jnp.int32))
    assert out["params"]["Embed_0"]["word_embeddings"]["embedding"].value.shape[
        0] == model.layout.vocab_size


def test_tiny_variants_run_a_forward_pass():
  for name, variant in CASES:
    if variant != "tiny":
      continue
    config = importlib.import_module(f"configs.{name}").get_config(variant)
    model = transformer_lib.Transformer(**config.model)
    ids = jnp.zeros((2, config.model.max_position_embeddings), jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), ids)
    assert model.apply(variables, ids).shape == (
        2, ids.shape[1], model.layout.vocab_size)


def test_unknown_variant_is_named():
  for name in CONFIG_FILES:
    with pytest.raises(ValueError, match="unknown variant 'huge'"):
      importlib.import_module(f"configs.{name}").get_config("huge")
