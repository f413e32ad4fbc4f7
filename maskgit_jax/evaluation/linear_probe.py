"""The linear probe: frozen features -> BatchNorm without affine -> linear.

The head of MAE's and MAGE's linear-probe protocol (LTH14/mage
``main_linprobe.py``: ``BatchNorm1d(affine=False, eps=1e-6)`` then a
linear layer initialised with a truncated normal of std 0.01), trained on
precomputed features. The reference trains it with LARS at batch 16,384
for 90 epochs; at the small scale of this library's studies the probe uses
**AdamW** (learning rate 1e-3, no weight decay, 10% linear warmup then
cosine, batch 256, 90 epochs, a fixed seed), the same for every kind of
features so that they compare. Every epoch is one jitted ``lax.scan``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


class ProbeHead(nn.Module):
  """``features [b, d] -> logits [b, num_classes]``: a non-affine BatchNorm
  (batch statistics in training, running ones in evaluation), then Dense."""

  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = nn.BatchNorm(use_running_average=not train, use_bias=False,
                     use_scale=False, epsilon=1e-6, momentum=0.9)(x)
    return nn.Dense(self.num_classes,
                    kernel_init=nn.initializers.truncated_normal(0.01))(x)


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
  """How the head is trained (see the module docstring)."""

  epochs: int = 90
  batch_size: int = 256
  learning_rate: float = 1e-3
  warmup_share: float = 0.1
  seed: int = 0

  def __post_init__(self):
    for name in ("epochs", "batch_size"):
      if getattr(self, name) < 1:
        raise ValueError(f"probe {name} must be positive, got "
                         f"{getattr(self, name)}")
    if not self.learning_rate > 0:
      raise ValueError(f"probe learning_rate must be positive, got "
                       f"{self.learning_rate}")


def _check(features: np.ndarray, labels: np.ndarray, what: str) -> None:
  if features.ndim != 2 or len(features) != len(labels):
    raise ValueError(f"{what}: features must be [n, d] with one label per "
                     f"row, got {features.shape} and {labels.shape} labels")
  if not np.all(np.isfinite(features)):
    raise ValueError(f"{what}: features are not all finite")


def fit(features: np.ndarray, labels: np.ndarray, num_classes: int,
        settings: ProbeSettings = ProbeSettings()) -> dict[str, Any]:
  """Trains a :class:`ProbeHead` on ``features [n, d]``, ``labels [n]``.

  Returns:
    The head's variables (``params`` and ``batch_stats``).
  """
  features = np.asarray(features, np.float32)
  labels = np.asarray(labels, np.int32)
  _check(features, labels, "training")
  batch = min(settings.batch_size, len(features))
  steps_per_epoch = len(features) // batch
  total = steps_per_epoch * settings.epochs
  warmup = int(settings.warmup_share * total)
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, settings.learning_rate, max(warmup, 1), max(total, 2))
  tx = optax.adamw(schedule, weight_decay=0.0)
  head = ProbeHead(num_classes)
  rng = jax.random.PRNGKey(settings.seed)
  variables = head.init(rng, jnp.zeros((2, features.shape[1])), train=False)
  params, stats = variables["params"], variables["batch_stats"]
  opt_state = tx.init(params)

  def step(carry, idx):
    params, stats, opt_state = carry
    x, y = features_d[idx], labels_d[idx]

    def loss_fn(p):
      logits, updates = head.apply({"params": p, "batch_stats": stats}, x,
                                   train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
      return loss.mean(), updates["batch_stats"]

    grads, new_stats = jax.grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), new_stats, opt_state), None

  @jax.jit
  def epoch(carry, key):
    order = jax.random.permutation(key, len(features))
    order = order[:steps_per_epoch * batch].reshape(steps_per_epoch, batch)
    return jax.lax.scan(step, carry, order)[0]

  features_d, labels_d = jnp.asarray(features), jnp.asarray(labels)
  carry = (params, stats, opt_state)
  for key in jax.random.split(jax.random.fold_in(rng, 1), settings.epochs):
    carry = epoch(carry, key)
  return {"params": carry[0], "batch_stats": carry[1]}


def accuracy(variables, features: np.ndarray, labels: np.ndarray) -> float:
  """Top-1 accuracy of a trained head on ``features [n, d]``."""
  features = np.asarray(features, np.float32)
  labels = np.asarray(labels)
  _check(features, labels, "evaluation")
  num_classes = variables["params"]["Dense_0"]["kernel"].shape[1]
  logits = ProbeHead(num_classes).apply(variables, jnp.asarray(features))
  return float(np.mean(np.asarray(logits).argmax(-1) == labels))


def probe(train: tuple[np.ndarray, np.ndarray],
          test: tuple[np.ndarray, np.ndarray], num_classes: int,
          settings: ProbeSettings = ProbeSettings()) -> dict[str, float]:
  """Fits on ``train = (features, labels)``; scores both splits."""
  variables = fit(*train, num_classes, settings)
  return {"train_accuracy": accuracy(variables, *train),
          "test_accuracy": accuracy(variables, *test)}
