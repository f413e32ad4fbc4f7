"""The Flax FID Inception against pytorch-fid's own network, number for
number (pool features and logits at 32, 256 and 512 px).

The fixture was made by ``scripts/make_inception_fixture.py`` with pytorch-fid
running random weights that ``inception.random_torch_state(seed)`` draws;
here the same weights and images are regenerated from the fixture's seed.
"""

import pathlib

import numpy as np
import pytest

from maskgit_jax.evaluation import inception
from tests import inception_inputs

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "inception_parity.npz"


@pytest.fixture(scope="module")
def fixture():
  return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def features(fixture):
  state = inception.random_torch_state(int(fixture["seed"]))
  checksum = sum(float(np.abs(v).sum(dtype=np.float64))
                 for v in state.values())
  # Guards the regeneration itself (numpy's streams, the name order).
  np.testing.assert_allclose(checksum, fixture["weights_checksum"],
                             rtol=1e-12)
  return inception.InceptionFeatures(inception.from_torch_state_dict(state),
                                     batch_size=inception_inputs.PER_SIZE)


@pytest.mark.parametrize("size", inception_inputs.SIZES)
def test_pool_features_and_logits_match_pytorch_fid(fixture, features, size):
  assert size in fixture["sizes"]
  images = inception_inputs.images(size, int(fixture["seed"]))
  assert images.sum(dtype=np.int64) == fixture[f"images_checksum_{size}"]
  ours = features(images)
  pool, logits = fixture[f"pool_{size}"], fixture[f"logits_{size}"]
  assert pool.std() > 1.0 and logits.std() > 1.0  # not a degenerate network
  np.testing.assert_allclose(ours["pool"], pool, rtol=0, atol=1e-4)
  np.testing.assert_allclose(ours["logits"], logits, rtol=0, atol=1e-4)


def test_a_changed_weight_is_caught(fixture):
  """The comparison can fail: one perturbed kernel moves the features."""
  state = inception.random_torch_state(int(fixture["seed"]))
  state["Mixed_6b.branch7x7_2.conv.weight"] *= 1.01
  ours = inception.InceptionFeatures(inception.from_torch_state_dict(state),
                                     batch_size=inception_inputs.PER_SIZE)(
                                         inception_inputs.images(32))
  assert np.abs(ours["pool"] - fixture["pool_32"]).max() > 1e-3
