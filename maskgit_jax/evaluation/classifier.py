"""A small CNN classifier for sample-quality metrics on small datasets.

On animal-MNIST it plays the role Inception plays on ImageNet: its logits
give the *class accuracy* of conditional samples (share assigned to their
conditioning class) and its penultimate features a *classifier FID*. It is
trained by :func:`train` on a split disjoint from the metrics' reference
split, and cached as an ``.npz``.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.runtime import batching
from maskgit_jax.runtime import supervised

FEATURES = 128


class SmallCNN(nn.Module):
  """Three conv + pool stages and a dense layer (about 1.3 GFLOP per 64
  images of 32x32: cheap enough to train on a laptop CPU in a minute).

  Attributes:
    num_classes: output classes.
  """

  num_classes: int

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """images: ``[b, H, W, 3]`` in [0, 1] -> logits ``[b, C]``, features ``[b, 128]``."""
    x = images * 2.0 - 1.0
    for width in (32, 64, 128):
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.mean((1, 2))
    x = nn.Dropout(0.3, deterministic=not train)(x)
    features = nn.relu(nn.Dense(FEATURES)(x))
    return nn.Dense(self.num_classes)(features), features


class Classifier:
  """Trained classifier params with batched, jitted inference on uint8."""

  def __init__(self, params, num_classes: int, *, batch_size: int = 500):
    self.model = SmallCNN(num_classes)
    self.params = params
    self.num_classes = num_classes
    self.batch_size = batch_size
    self._apply = jax.jit(lambda p, x: self.model.apply(
        {"params": p}, x.astype(jnp.float32) / 255.0))

  def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
      raise ValueError(f"images must be uint8 [n, H, W, 3], got "
                       f"{images.dtype} {images.shape}")
    return batching.map_chunks(lambda x: self._apply(self.params, x),
                               [images], self.batch_size)

  def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
    """One pass: ``{"pool": features [n, 128], "logits": [n, C]}`` (the
    interface of :class:`maskgit_jax.evaluation.inception.InceptionFeatures`)."""
    logits, features = self._run(images)
    return {"pool": features, "logits": logits}

  def logits(self, images: np.ndarray) -> np.ndarray:
    """uint8 ``[n, H, W, 3]`` -> float32 logits ``[n, C]``."""
    return self._run(images)[0]

  __call__ = logits  # a Classifier is a rejection-sampling classifier

  def features(self, images: np.ndarray) -> np.ndarray:
    """uint8 ``[n, H, W, 3]`` -> penultimate features ``[n, 128]``."""
    return self._run(images)[1]

  def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
    return float((self.logits(images).argmax(-1) == labels).mean())

  def save(self, path):
    return supervised.save(path, self.params,
                           num_classes=np.int32(self.num_classes))

  @classmethod
  def load(cls, path) -> "Classifier":
    params, meta = supervised.load(path, ("num_classes",), "classifier")
    return cls(params, int(meta["num_classes"]))


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
          steps: int = 1500, batch_size: int = 64,
          learning_rate: float = 2e-3, seed: int = 0,
          log: Callable[[str], None] | None = print) -> Classifier:
  """Trains :class:`SmallCNN` (see :func:`maskgit_jax.runtime.supervised.fit`).

  Args:
    images: uint8 ``[n, H, W, 3]``; labels: int ``[n]``.
    log: called with a progress line every 10% of the steps.
  """
  params = supervised.fit(SmallCNN(num_classes), images, labels, steps=steps,
                          batch_size=batch_size, learning_rate=learning_rate,
                          seed=seed, name="classifier", log=log)
  return Classifier(params, num_classes)
