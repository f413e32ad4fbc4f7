"""Fine-tuning: config.init_from seeds a fresh run from another workdir."""

import flax
import numpy as np
import pytest

from maskgit_jax.runtime import checkpointing
from maskgit_jax.trainers import loop
from maskgit_jax.trainers import warm_start
from tests import train_helpers as th


def test_merge_copies_remaps_the_class_rows_and_names_mismatches():
  rng = np.random.default_rng(0)
  codes, hidden = 5, 3
  source = {"embed": {"word_embeddings": {"embedding": rng.normal(
      size=(codes + 2 + 1, hidden))}}, "mlm_bias": {"bias": rng.normal(
          size=codes + 2 + 1)}, "dense": {"kernel": rng.normal(size=(3, 3))},
            "only_in_source": np.ones(2)}
  target = {"embed": {"word_embeddings": {"embedding": rng.normal(
      size=(codes + 4 + 1, hidden))}}, "mlm_bias": {"bias": rng.normal(
          size=codes + 4 + 1)}, "dense": {"kernel": np.zeros((3, 3))},
            "fresh": np.zeros(4)}
  merged, report = warm_start.merge(target, source, codes)
  table, old = (merged["embed"]["word_embeddings"]["embedding"],
                source["embed"]["word_embeddings"]["embedding"])
  np.testing.assert_array_equal(table[:codes], old[:codes])
  np.testing.assert_array_equal(table[-1], old[-1])  # the mask row
  np.testing.assert_array_equal(  # class rows: the target's own
      table[codes:-1],
      target["embed"]["word_embeddings"]["embedding"][codes:-1])
  np.testing.assert_array_equal(merged["mlm_bias"]["bias"][:codes],
                                source["mlm_bias"]["bias"][:codes])
  np.testing.assert_array_equal(merged["dense"]["kernel"],
                                source["dense"]["kernel"])
  assert report["kept"] == ["fresh"] and not report["mismatched"]
  assert sorted(report["remapped"]) == ["embed/word_embeddings/embedding",
                                        "mlm_bias/bias"]
  _, report = warm_start.merge({"dense": {"kernel": np.zeros((4, 3))}},
                               source, codes)
  assert report["mismatched"] == ["dense/kernel [3, 3] -> [4, 3]"]


def _official_sized(imported, **overrides):
  """A stage-2 config shaped like the fixture's transformer (16 px)."""
  config = th.transformer_config(imported / "tokenizer")
  model = checkpointing.read_config(imported)["model"]
  config.model.update({k: model[k] for k in (
      "codebook_size", "hidden_size", "num_layers", "num_heads", "mlp_dim")})
  config.update(init_from=str(imported), **overrides)
  return config


@pytest.mark.slow  # trains or compiles for several seconds
def test_fine_tuning_an_imported_checkpoint_with_more_classes(imported,
                                                              tmp_path):
  config = _official_sized(imported, num_train_steps=10,
                           checkpoint_every_steps=10, preview_every_steps=0)
  config.model.num_classes = 12  # the fixture has 10
  metrics = loop.train_and_evaluate(config, tmp_path / "tuned")
  assert np.isfinite(metrics["loss"])
  tuned = checkpointing.restore_state_tree(tmp_path / "tuned")["params"]
  source = checkpointing.restore_state_tree(imported)["params"]
  # Ten small steps from the source: every shared leaf stays close to it.
  flat = lambda t: flax.traverse_util.flatten_dict(t, sep="/")  # pylint: disable=unnecessary-lambda-assignment
  tuned, source = flat(tuned), flat(source)
  same = [k for k in source if tuned[k].shape == source[k].shape]
  assert len(same) == len(source) - 2  # the token table and its bias
  for k in same:
    drift = np.abs(np.asarray(tuned[k]) - np.asarray(source[k])).max()
    assert drift < 0.05 + 0.1 * np.abs(np.asarray(source[k])).max(), k


def test_a_shape_mismatch_names_its_leaves_in_one_line(imported, tmp_path):
  config = _official_sized(imported, num_train_steps=1)
  config.model.mlp_dim = 2 * config.model.mlp_dim
  with pytest.raises(ValueError, match="leaves differ in shape") as error:
    loop.train_and_evaluate(config, tmp_path / "bad")
  assert "\n" not in str(error.value)
  assert not (tmp_path / "bad" / "checkpoints").exists() or not list(
      (tmp_path / "bad" / "checkpoints").iterdir())


@pytest.mark.slow  # trains or compiles for several seconds
def test_tokenizer_fine_tuning_from_the_imported_one_with_a_new_discriminator(
    imported, tmp_path):
  """The released tokenizer seeds a stage-1 run; the discriminator (absent
  from the release) starts from its own initialisation and trains."""
  source_dir = imported / "tokenizer"
  config = th.tokenizer_config(num_train_steps=2, checkpoint_every_steps=2,
                               preview_every_steps=0,
                               init_from=str(source_dir))
  config.model.update(checkpointing.read_config(source_dir)["model"])
  config.image_size = checkpointing.read_config(source_dir)["image_size"]
  config.optimizer.learning_rate = 0.0  # the generator stays the source
  config.losses.update(discriminator_start_step=0, dead_code_restart=False)
  metrics = loop.train_and_evaluate(config, tmp_path / "tok")
  assert np.isfinite(metrics["discriminator_loss"])
  tuned = checkpointing.restore_state_tree(tmp_path / "tok")
  source = checkpointing.restore_state_tree(source_dir)["params"]
  flat = lambda t: flax.traverse_util.flatten_dict(t, sep="/")  # pylint: disable=unnecessary-lambda-assignment
  assert flat(tuned["params"]).keys() == flat(source).keys()
  for k, v in flat(source).items():
    np.testing.assert_array_equal(flat(tuned["params"])[k], v, err_msg=k)
  assert "disc_params" in tuned and flat(tuned["disc_params"])
