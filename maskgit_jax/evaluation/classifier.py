"""A small CNN classifier for sample-quality metrics on small datasets.

On animal-MNIST it plays the role Inception plays on ImageNet: its logits
give the *class accuracy* of conditional samples (share assigned to their
conditioning class) and its penultimate features a *classifier FID*. It is
trained by :func:`train` on a split disjoint from the metrics' reference
split, and cached as an ``.npz``.
"""

from __future__ import annotations

import pathlib
import time
from typing import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_jax import batching

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


def _augment(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
  """Random horizontal flips and shifts of up to 2 pixels (uint8)."""
  flips = rng.random(len(images)) < 0.5
  images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
  dy, dx = rng.integers(0, 5, 2)
  h, w = images.shape[1:3]
  return padded[:, dy:dy + h, dx:dx + w]


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

  def save(self, path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = flax.traverse_util.flatten_dict(jax.device_get(self.params),
                                           sep="/")
    np.savez(path, num_classes=np.int32(self.num_classes), **flat)
    return path

  @classmethod
  def load(cls, path: str | pathlib.Path) -> "Classifier":
    path = pathlib.Path(path)
    if not path.is_file():
      raise FileNotFoundError(f"classifier weights {path} do not exist")
    with np.load(path) as data:
      num_classes = int(data["num_classes"])
      flat = {k: np.asarray(v) for k, v in data.items() if k != "num_classes"}
    return cls(flax.traverse_util.unflatten_dict(flat, sep="/"), num_classes)


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
          steps: int = 1500, batch_size: int = 64,
          learning_rate: float = 2e-3, seed: int = 0,
          log: Callable[[str], None] | None = print) -> Classifier:
  """Trains :class:`SmallCNN` with AdamW and cosine decay.

  Args:
    images: uint8 ``[n, H, W, 3]``; labels: int ``[n]``.
    log: called with a progress line every 10% of the steps.
  """
  model = SmallCNN(num_classes)
  rng = np.random.default_rng(seed)
  params = model.init(jax.random.PRNGKey(seed),
                      jnp.zeros((1,) + images.shape[1:]))["params"]
  tx = optax.adamw(optax.cosine_decay_schedule(learning_rate, steps),
                   weight_decay=1e-4)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y, key):
    def loss_fn(p):
      logits, _ = model.apply({"params": p}, x.astype(jnp.float32) / 255.0,
                              train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  start = time.time()
  for i in range(steps):
    idx = rng.integers(0, len(images), batch_size)
    params, opt_state, loss = step(params, opt_state,
                                   _augment(rng, images[idx]), labels[idx],
                                   jax.random.PRNGKey(i))
    if log and (i + 1) % max(steps // 10, 1) == 0:
      log(f"classifier step {i + 1}/{steps} loss {float(loss):.3f} "
          f"({time.time() - start:.0f} s)")
  return Classifier(params, num_classes)
