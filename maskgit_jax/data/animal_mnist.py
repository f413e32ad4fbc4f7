"""animal-MNIST: the demo's data, read from the pip package without its code.

10,000 28x28 grey silhouettes of 10 classes (``pip install --no-deps
animal-mnist==0.4``; its metadata pulls TensorFlow that the reader never
needs), padded to 32x32 RGB. The package stores gzip'd pickles: they are
read with an unpickler that accepts numpy arrays only, so no code from the
file can run. The held-out split is fixed and stratified by class.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pathlib
import pickle

import numpy as np

ANIMAL_MNIST_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant",
                        "giraffe", "horse", "sheep", "zebra")
# Held-out share of animal-MNIST ("test"); fixed split, stratified by class.
ANIMAL_MNIST_TEST_PER_CLASS = 200
# The validation split, carved from "train" the same way: every choice (decode
# settings, training levers, early stops) is made on it; "test" only reports.
ANIMAL_MNIST_VALIDATION_PER_CLASS = 100
ANIMAL_MNIST_SPLITS = ("train", "test", "validation", "train_minus_validation",
                       "all")


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Unpickles plain numpy arrays and nothing else (no code can run)."""

  _ALLOWED = {
      ("numpy.core.multiarray", "_reconstruct"),
      ("numpy._core.multiarray", "_reconstruct"),
      ("numpy", "ndarray"),
      ("numpy", "dtype"),
  }

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(
          f"refusing to unpickle {module}.{name}: only numpy arrays allowed")
    if name == "_reconstruct":
      return np.ndarray.__reduce__(np.zeros(()))[0]  # numpy's own rebuilder
    return getattr(np, name)


def _load_numpy_pickle(path: pathlib.Path) -> np.ndarray:
  with gzip.open(path, "rb") as f:
    value = _NumpyOnlyUnpickler(f).load()
  if not isinstance(value, np.ndarray):
    raise ValueError(f"{path} does not hold a numpy array")
  return value


@functools.lru_cache(maxsize=1)
def load_animal_mnist() -> tuple[np.ndarray, np.ndarray]:
  """All 10,000 images (uint8 ``[N, 32, 32, 3]``) and labels (int32 ``[N]``).

  Raises:
    FileNotFoundError: when the ``animal-mnist`` package is not installed.
  """
  spec = importlib.util.find_spec("animal_mnist")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        "dataset 'animal_mnist' needs the animal-mnist package: "
        "pip install --no-deps animal-mnist==0.4")
  root = pathlib.Path(list(spec.submodule_search_locations)[0])
  folder = root / "data" / "Animal_MNIST"
  images = _load_numpy_pickle(folder / "animal_data_version_3.gz")
  labels = _load_numpy_pickle(folder / "animal_label_version_3.gz")
  images = np.asarray(images, np.uint8).reshape(-1, 28, 28)
  images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
  images = np.repeat(images[..., None], 3, axis=-1)
  return images, np.asarray(labels, np.int32).reshape(-1)


def _stratified(order: np.ndarray, labels: np.ndarray, per_class: int
                ) -> np.ndarray:
  """The first ``per_class`` indices of each class in ``order``."""
  return np.concatenate([order[labels[order] == c][:per_class]
                         for c in range(len(ANIMAL_MNIST_CLASSES))])


def animal_mnist_split(split: str) -> np.ndarray:
  """Sorted record indices of ``split``.

  * "test": 200 per class (2,000), held out from everything; reports only.
  * "train": the other 8,000 (what ``make demo`` trains on).
  * "validation": 100 per class (1,000) of "train", for choices.
  * "train_minus_validation": "train" without "validation" (7,000): what a
    study trains on when it chooses on "validation".
  * "all": every record.

  The splits are fixed (seeded permutations) and stratified by class.
  """
  _, labels = load_animal_mnist()
  if split == "all":
    return np.arange(len(labels))
  order = np.random.default_rng(20221).permutation(len(labels))
  test = _stratified(order, labels, ANIMAL_MNIST_TEST_PER_CLASS)
  train = np.setdiff1d(np.arange(len(labels)), test)
  if split == "test":
    return np.sort(test)
  if split == "train":
    return train
  if split not in ANIMAL_MNIST_SPLITS:
    raise ValueError(f"unknown animal_mnist split {split!r}; expected one of "
                     f"{ANIMAL_MNIST_SPLITS}")
  validation = np.sort(_stratified(
      np.random.default_rng(20222).permutation(train), labels,
      ANIMAL_MNIST_VALIDATION_PER_CLASS))
  if split == "validation":
    return validation
  return np.setdiff1d(train, validation)
