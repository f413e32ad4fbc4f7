"""The linear probe: BatchNorm without affine + linear, AdamW."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from maskgit_jax.evaluation import linear_probe as lp
from maskgit_jax.evaluation import representations

FAST = lp.ProbeSettings(epochs=8, batch_size=128)


def _blobs(seed, n=1200, dim=16, classes=5, spread=1.0):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, dim)) * 3
  labels = rng.integers(0, classes, n)
  return (centers[labels] + spread * rng.normal(size=(n, dim))).astype(
      np.float32), labels


def test_the_head_is_a_non_affine_batchnorm_and_a_linear_layer():
  variables = lp.ProbeHead(7).init(jax.random.PRNGKey(0), np.zeros((2, 5)))
  params = jax.tree_util.tree_map(np.shape, variables["params"])
  assert params == {"Dense_0": {"kernel": (5, 7), "bias": (7,)}}
  stats = jax.tree_util.tree_map(np.shape, variables["batch_stats"])
  assert stats == {"BatchNorm_0": {"mean": (5,), "var": (5,)}}


def test_separable_classes_are_found_and_noise_labels_are_not():
  x, y = _blobs(0)
  result = lp.probe((x[:1000], y[:1000]), (x[1000:], y[1000:]), 5, FAST)
  assert result["test_accuracy"] > 0.95
  shuffled = np.random.default_rng(1).permutation(y)
  noise = lp.probe((x[:1000], shuffled[:1000]), (x[1000:], shuffled[1000:]),
                   5, FAST)
  assert noise["test_accuracy"] < 0.4  # chance is 0.2


@settings(max_examples=2, deadline=None)
@given(seed=st.integers(0, 999), scale=st.floats(0.01, 100.0),
       shift=st.floats(-50.0, 50.0))
def test_per_feature_affine_changes_do_not_move_the_probe(seed, scale, shift):
  """The BatchNorm standardises every feature, so rescaling and shifting
  the features gives the same predictions (up to float rounding, which
  can flip a point on a class boundary). 300 steps, so that the running
  statistics have forgotten their (0, 1) start (0.9 ** 300)."""
  x, y = _blobs(seed, n=600, spread=2.0)
  settings_ = lp.ProbeSettings(epochs=25, batch_size=50)
  a = lp.fit(x, y, 5, settings_)
  b = lp.fit(x * scale + shift, y, 5, settings_)
  logits_a = lp.ProbeHead(5).apply(a, x)
  logits_b = lp.ProbeHead(5).apply(b, x * scale + shift)
  agree = np.mean(np.argmax(logits_a, -1) == np.argmax(logits_b, -1))
  assert agree > 0.98


def test_bad_features_are_refused():
  x, y = _blobs(0, n=50)
  with pytest.raises(ValueError, match="one label per row"):
    lp.fit(x, y[:10], 5, FAST)
  x[3, 2] = np.nan
  with pytest.raises(ValueError, match="not all finite"):
    lp.fit(x, y, 5, FAST)
  with pytest.raises(ValueError, match="epochs must be positive"):
    lp.ProbeSettings(epochs=0)
  with pytest.raises(ValueError, match="features must be one of"):
    representations.extractor("inception", None)
  with pytest.raises(ValueError, match="needs a checkpoint"):
    representations.extractor("mage", None)
  with pytest.raises(ValueError, match="pooling must be one of.*'max'"):
    representations.extractor("pixels", None, "max")


def test_pixel_features():
  images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), np.uint8)
  feats = representations.pixels(images)
  assert feats.shape == (3, 48) and feats.dtype == np.float32
  np.testing.assert_allclose(feats[1].reshape(4, 4, 3), images[1] / 255.0,
                             rtol=1e-6)


def test_pixels_pooled_are_the_mean_colour_and_every_kind_has_both():
  images = np.random.default_rng(1).integers(0, 256, (3, 4, 4, 3), np.uint8)
  extract, _ = representations.extractor("pixels", None, "mean")
  np.testing.assert_allclose(extract(images),
                             images.reshape(3, -1, 3).mean(1) / 255.0,
                             rtol=1e-5)
  np.testing.assert_array_equal(representations.extractor("pixels", None)[0](
      images), representations.pixels(images))  # native: flattened
  assert set(representations.NATIVE) == set(representations.KINDS)
  positions = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
  np.testing.assert_array_equal(representations.pool(positions, "flatten"),
                                positions.reshape(2, 12))
  np.testing.assert_allclose(representations.pool(positions, "mean"),
                             positions.mean(1))
