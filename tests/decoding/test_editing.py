"""Editing helpers: region -> token masks, compositing, the official edit."""

import hypothesis
import hypothesis.strategies as st
import jax
import numpy as np
import pytest

from maskgit_jax.decoding import editing
from maskgit_jax.models import transformer as transformer_lib
from tests import helpers


def test_box_edit_reproduces_the_official_edit(parity):
  io = parity.io
  model = helpers.official_tiny_transformer()
  layout = model.layout
  state = editing.edit_tokens(
      parity.params("transformer")["params"], io["tok_ids"][:1],
      io["edit_latent_mask"].astype(bool), [parity.config["decode"][
          "edit_label"]], jax.random.PRNGKey(0), layout=layout,
      tokens_to_logits=transformer_lib.CodebookLogits(model), num_iter=8,
      start_iter=2, greedy=True, choice_temperature=0.0)
  official = io["edit_greedy_t0_final_seqs"]
  np.testing.assert_array_equal(state.sequences[:, 2:], official[:, 2:])
  # Our mask id is the explicit last row; the official one is -1.
  ours = np.where(np.asarray(state.step_inputs[2:]) == layout.mask_id, -1,
                  np.asarray(state.step_inputs[2:]))
  np.testing.assert_array_equal(ours, io["edit_greedy_t0_step_inputs"])
  # The fixture's latent box is the official box with rows 2..5, cols 1..6.
  box_mask = editing.box_to_token_mask((6, 4, 4, 8), (16, 16), 2, widen=1)
  np.testing.assert_array_equal(box_mask, io["edit_latent_mask"][0] > 0)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(top=st.integers(0, 31), left=st.integers(0, 31),
                  height=st.integers(1, 32), width=st.integers(1, 32),
                  widen=st.integers(0, 2))
def test_box_token_mask_covers_the_box(top, left, height, width, widen):
  hypothesis.assume(top + height <= 32 and left + width <= 32)
  box = (top, left, height, width)
  tokens = editing.box_to_token_mask(box, (32, 32), 4, widen=widen)
  pixels = editing.token_mask_to_pixels(tokens, 4)
  inside = np.zeros((32, 32), bool)
  inside[top:top + height, left:left + width] = True
  assert pixels[inside].all()  # the whole box is regenerated
  # ... and nothing beyond `widen` tokens around the box's tokens.
  tight = editing.pixel_mask_to_token_mask(inside, 4, widen=widen)
  np.testing.assert_array_equal(tokens, tight)


def test_bad_regions_are_reported():
  with pytest.raises(ValueError, match="outside the 16x16 image"):
    editing.box_to_token_mask((10, 10, 8, 4), (16, 16), 2)
  with pytest.raises(ValueError, match="positive height and width"):
    editing.box_to_token_mask((0, 0, 0, 4), (16, 16), 2)
  with pytest.raises(ValueError, match="not a multiple of the token factor 4"):
    editing.pixel_mask_to_token_mask(np.ones((10, 12), bool), 4)
  model = helpers.official_tiny_transformer()
  with pytest.raises(ValueError, match="edit mask is empty"):
    editing.edit_tokens(None, np.zeros((1, 8, 8), np.int32),
                        np.zeros((8, 8), bool), [0], jax.random.PRNGKey(0),
                        layout=model.layout,
                        tokens_to_logits=transformer_lib.CodebookLogits(model))


def test_feathered_composite_keeps_outside_pixels_exactly():
  rng = np.random.default_rng(0)
  original = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  generated = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  region = np.zeros((16, 16), bool)
  region[4:12, 2:14] = True
  out = editing.feathered_composite(original, generated, region, sigma=1.5)
  np.testing.assert_array_equal(out[:, ~region], original[:, ~region])
  np.testing.assert_allclose(out[:, 8, 8], generated[:, 8, 8], atol=1e-6)
  edge = out[:, 4, 8]  # on the seam: a mix of both
  assert not np.allclose(edge, original[:, 4, 8])
  hard = editing.feathered_composite(original, generated, region, sigma=0)
  np.testing.assert_array_equal(hard[:, region], generated[:, region])
