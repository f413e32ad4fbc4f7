"""ImageNet class names: the id order of TFDS's imagenet2012, lookups both
ways."""

import pathlib

import pytest
import tensorflow_datasets as tfds

from maskgit_jax.data import imagenet_classes


def test_ids_follow_tfds_imagenet2012_labels():
  labels = (pathlib.Path(tfds.__file__).parent / "datasets" / "imagenet2012"
            / "labels.txt").read_text().split()
  ours = [imagenet_classes.synset(i) for i in range(1000)]
  assert ours == labels
  assert ours == sorted(ours)  # the usual ImageNet order: sorted synsets


def test_every_unambiguous_name_finds_its_class():
  counts = {}
  for i in range(1000):
    for n in set(x.lower() for x in imagenet_classes.names(i)):
      counts[n] = counts.get(n, 0) + 1
  checked = 0
  for i in range(1000):
    assert imagenet_classes.class_id(imagenet_classes.synset(i)) == i
    for n in imagenet_classes.names(i):
      if counts[n.lower()] == 1:
        assert imagenet_classes.class_id(n.upper()) == i
        checked += 1
  assert checked > 1500


def test_known_names():
  assert imagenet_classes.name(0) == "tench"
  assert imagenet_classes.class_id("goldfish") == 1
  assert imagenet_classes.class_id(" Golden Retriever ") == 207
  assert imagenet_classes.name(999) == "toilet tissue"


def test_ambiguous_and_unknown_names_are_refused():
  with pytest.raises(KeyError, match=r"134 \(crane\), 517 \(crane\)"):
    imagenet_classes.class_id("crane")
  with pytest.raises(KeyError, match="names containing it.*goldfish"):
    imagenet_classes.class_id("goldfis")
  with pytest.raises(ValueError, match="1000 is outside"):
    imagenet_classes.name(1000)
