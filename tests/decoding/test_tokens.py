"""Token layout: vocabulary arithmetic, sequence building, mask id mapping."""

import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.decoding import tokens


def test_layout_matches_released_vocabulary():
  layout = tokens.TokenLayout(codebook_size=1024, num_classes=1000)
  assert layout.vocab_size == 2025  # Embed_0/word_embeddings of the release.
  assert layout.mask_id == 2024


def test_make_sequence_places_class_token_first_and_masks(parity):
  io = parity.io
  layout = tokens.TokenLayout(64, 10)
  mask = io["edit_latent_mask"].astype(bool)
  seq = layout.make_sequence(
      [5], io["tok_ids"][:1], mask=mask, mask_id=tokens.OFFICIAL_MASK_ID)
  np.testing.assert_array_equal(seq, io["edit_input_ids"])
  gen = layout.masked_sequence([3, 7], 64, mask_id=tokens.OFFICIAL_MASK_ID)
  np.testing.assert_array_equal(gen, io["gen_input_ids"])


def test_canonicalize_maps_only_the_official_mask_id():
  layout = tokens.TokenLayout(4, 2)
  ids = jnp.array([[4, -1, 0, 3, 6]])
  np.testing.assert_array_equal(layout.canonicalize(ids), [[4, 6, 0, 3, 6]])


def test_image_tokens_round_trip():
  layout = tokens.TokenLayout(16, 3)
  grid = np.arange(2 * 12).reshape(2, 3, 4) % 16
  seq = layout.make_sequence([0, 2], grid)
  np.testing.assert_array_equal(tokens.image_tokens(seq, (3, 4)), grid)
  with pytest.raises(ValueError, match="does not match a 4x4 grid"):
    tokens.image_tokens(seq, (4, 4))


@pytest.mark.parametrize("labels", [[-1], [10], [0, 12]])
def test_labels_out_of_range_are_rejected(labels):
  with pytest.raises(ValueError, match=r"class labels must lie in \[0, 10\)"):
    tokens.TokenLayout(64, 10).class_token(labels)
