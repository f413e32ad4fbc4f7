"""Import of official msgpack checkpoints, end to end on the fixture trees."""

import jax
import numpy as np
import pytest

from maskgit_jax.runtime import checkpointing
from maskgit_jax.runtime import official
from maskgit_jax.decoding import parallel_decode
from maskgit_jax.models import transformer as transformer_lib
from maskgit_jax.runtime import restore


def test_hyperparameters_are_inferred_from_shapes(parity, imported):
  saved = checkpointing.read_config(imported)
  tf, tok = parity.config["transformer"], parity.config["tokenizer"]
  assert saved["stage"] == "transformer"
  assert saved["model"]["codebook_size"] == tf["codebook_size"]
  assert saved["model"]["num_classes"] == tf["num_class"]
  assert saved["model"]["hidden_size"] == tf["hidden_size"]
  assert saved["model"]["num_layers"] == tf["num_hidden_layers"]
  assert saved["model"]["num_heads"] == tf["num_attention_heads"]
  assert saved["model"]["mlp_dim"] == tf["intermediate_size"]
  assert saved["model"]["max_position_embeddings"] == tf[
      "max_position_embeddings"]
  assert saved["image_size"] == tok["image_size"]
  tok_saved = checkpointing.read_config(imported / "tokenizer")
  assert tok_saved["stage"] == "tokenizer"
  for field in ("filters", "num_res_blocks", "embedding_dim",
                "codebook_size"):
    assert tok_saved["model"][field] == tok[field], field
  assert list(tok_saved["model"]["channel_multipliers"]) == tok[
      "channel_multipliers"]


@pytest.mark.slow  # trains or compiles for several seconds
def test_imported_models_reproduce_the_official_generation(parity, imported):
  saved = checkpointing.read_config(imported)
  model = transformer_lib.Transformer(**saved["model"])
  params = checkpointing.restore_state_tree(imported)["ema_params"]
  state = parallel_decode.decode(
      params, parity.io["gen_input_ids"], jax.random.PRNGKey(0),
      tokens_to_logits=transformer_lib.CodebookLogits(model), num_iter=8,
      greedy=True, choice_temperature=0.0)
  np.testing.assert_array_equal(state.sequences,
                                parity.io["gen_greedy_t0_final_seqs"])
  tokenizer, tok_params = restore.load_tokenizer(imported / "tokenizer")
  images = tokenizer.apply({"params": tok_params},
                           state.final[:, 1:].reshape(2, 8, 8),
                           method=tokenizer.decode_from_indices)
  np.testing.assert_allclose(images, parity.io["gen_greedy_t0_images"],
                             rtol=0, atol=5e-5)


def test_foreign_files_are_reported(tmp_path, parity):
  bad = tmp_path / "bad"
  bad.write_bytes(b"not msgpack at all")
  with pytest.raises(ValueError, match="is not a Flax msgpack checkpoint"):
    official.read_msgpack(bad)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    official.read_msgpack(tmp_path / "missing")
  with pytest.raises(ValueError, match="not an official MaskGIT tokenizer"):
    official.infer_tokenizer(parity.params("transformer")["params"])


def test_released_models_are_imported_once_into_the_cache(parity, tmp_path,
                                                          monkeypatch):
  import flax.serialization  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  source = tmp_path / "bucket"
  source.mkdir()
  tok_name, tf_name = official.RELEASED["imagenet256"]
  for name, which in ((tok_name, "tokenizer"), (tf_name, "transformer")):
    (source / name).write_bytes(
        flax.serialization.msgpack_serialize(parity.params(which)))
  cache = tmp_path / "cache"
  out = official.fetch_released("imagenet256", cache, source=str(source))
  assert out == cache / "imagenet256" and (out / "imported.json").exists()
  # Later calls load the cached import: the sources are not read again.
  for f in source.iterdir():
    f.unlink()
  monkeypatch.setenv("MASKGIT_JAX_CACHE", str(cache))
  gen = sampling.Generator.from_pretrained("imagenet256")
  assert gen.generate([3], seed=0).shape == (1, 16, 16, 3)
  # An unfinished import (no marker) is redone, not trusted.
  (out / "imported.json").unlink()
  with pytest.raises(FileNotFoundError):
    official.fetch_released("imagenet256", cache, source=str(source))
  assert not (cache / "imagenet256").exists()
  with pytest.raises(ValueError, match="expected one of.*imagenet512"):
    official.fetch_released("imagenet1024", cache)


def test_process_zero_first_returns_and_reraises_after_the_barrier():
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  assert sharding.process_zero_first(lambda: 7, "seven") == 7
  with pytest.raises(FileNotFoundError, match="gone"):
    sharding.process_zero_first(
        lambda: (_ for _ in ()).throw(FileNotFoundError("gone")), "fails")
