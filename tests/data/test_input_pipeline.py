"""The per-record transforms of cached tokens: one view, or both (MAGE-C)."""

import numpy as np
import pytest

from maskgit_jax.data import input_pipeline


def _cached():
  """One record of cached tokens: ``[2, h, w]``, the image's then the
  mirror's (as ``tools.pretokenize`` writes them)."""
  return np.arange(2 * 3 * 3).reshape(2, 3, 3)


@pytest.mark.parametrize("views", [1, 2])
def test_training_picks_the_image_or_its_mirror_at_random(views):
  tokens, rng = _cached(), np.random.default_rng(0)
  pick = input_pipeline.PickTokens(train=True, views=views)
  firsts = []
  for _ in range(200):
    out = pick(tokens, rng)
    if views == 1:
      assert out.shape == (3, 3)
      firsts.append(int(out[0, 0] == tokens[1, 0, 0]))
    else:  # both, in random order, never the same one twice
      assert out.shape == (2, 3, 3)
      assert {int(out[0, 0, 0]), int(out[1, 0, 0])} == {0, 9}
      firsts.append(int(out[0, 0, 0] == 9))
  assert 70 < sum(firsts) < 130  # about half mirrored first


def test_evaluation_and_no_flip_keep_the_image_first():
  tokens, rng = _cached(), np.random.default_rng(0)
  for pick in (input_pipeline.PickTokens(train=False, views=2),
               input_pipeline.PickTokens(train=True, flip=False, views=2)):
    np.testing.assert_array_equal(pick(tokens, rng), tokens)
  np.testing.assert_array_equal(
      input_pipeline.PickTokens(train=False)(tokens, rng), tokens[0])


def test_two_views_need_cached_tokens():
  images = input_pipeline.make_source("animal_mnist", "test")
  with pytest.raises(ValueError, match="need cached tokens"):
    input_pipeline.make_preprocess(images, image_size=16, train=True,
                                   views=2)
  with pytest.raises(ValueError, match="views must be 1 or 2, got 3"):
    input_pipeline.make_preprocess(images, image_size=16, train=True,
                                   views=3)
