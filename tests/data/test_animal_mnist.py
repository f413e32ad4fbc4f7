"""animal-MNIST's fixed splits: disjoint, complete, stratified, stable."""

import numpy as np
import pytest

from maskgit_jax.data import animal_mnist


def _split(name):
  return animal_mnist.animal_mnist_split(name)


def test_splits_partition_the_records_by_class():
  _, labels = animal_mnist.load_animal_mnist()
  test, train = _split("test"), _split("train")
  val, fit = _split("validation"), _split("train_minus_validation")
  np.testing.assert_array_equal(np.union1d(test, train), _split("all"))
  assert not np.intersect1d(test, train).size
  np.testing.assert_array_equal(np.union1d(val, fit), train)
  assert not np.intersect1d(val, fit).size
  classes = len(animal_mnist.ANIMAL_MNIST_CLASSES)
  np.testing.assert_array_equal(
      np.bincount(labels[test], minlength=classes),
      animal_mnist.ANIMAL_MNIST_TEST_PER_CLASS)
  np.testing.assert_array_equal(
      np.bincount(labels[val], minlength=classes),
      animal_mnist.ANIMAL_MNIST_VALIDATION_PER_CLASS)
  for indices in (test, train, val, fit):
    assert (np.diff(indices) > 0).all()  # sorted, no repeats


def test_splits_are_the_same_on_every_call_and_bad_names_are_refused():
  for name in animal_mnist.ANIMAL_MNIST_SPLITS:
    np.testing.assert_array_equal(_split(name), _split(name))
  with pytest.raises(ValueError, match="'valid'.*validation"):
    _split("valid")
