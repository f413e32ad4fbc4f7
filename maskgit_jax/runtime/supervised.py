"""Fitting a small image classifier, and saving it as an ``.npz``.

Shared by the demo's evaluation classifier (``evaluation/classifier.py``)
and the perceptual network the tokenizer may train with
(``trainers/perceptual.py``), which must stay two different networks: each
passes its own module and seed.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from etils import epath
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_jax.runtime import sharding
from maskgit_jax.runtime import storage


def augment(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
  """Random horizontal flips and shifts of up to 2 pixels (uint8)."""
  flips = rng.random(len(images)) < 0.5
  images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
  dy, dx = rng.integers(0, 5, 2)
  h, w = images.shape[1:3]
  return padded[:, dy:dy + h, dx:dx + w]


def fit(model: nn.Module, images: np.ndarray, labels: np.ndarray, *,
        steps: int, batch_size: int = 64, learning_rate: float = 2e-3,
        seed: int = 0, name: str = "classifier",
        log: Callable[[str], None] | None = print) -> Any:
  """Trains ``model`` (``(images, train) -> (logits, ...)``) with AdamW,
  cosine decay, cross-entropy and :func:`augment`; returns its params.

  Args:
    model: called as ``model.apply({"params": p}, x, train=True,
      rngs={"dropout": key})`` with ``x`` float in [0, 1]; its first output
      is the logits ``[b, C]``.
    images: uint8 ``[n, H, W, 3]``; labels: int ``[n]``.
    log: called with a progress line every 10% of the steps.
  """
  rng = np.random.default_rng(seed)
  # One jitted program (the same numbers as op by op, without compiling
  # every initialiser on its own).
  params = jax.jit(model.init)(jax.random.PRNGKey(seed),
                               jnp.zeros((1,) + images.shape[1:]))["params"]
  tx = optax.adamw(optax.cosine_decay_schedule(learning_rate, steps),
                   weight_decay=1e-4)
  opt_state = tx.init(params)
  # Data-parallel over the local devices that divide the batch (on CPU see
  # sharding.split_host_cpu); the same program on one device otherwise.
  devices = jax.local_devices()
  while batch_size % len(devices):
    devices = devices[:-1]
  mesh = sharding.make_mesh((-1, 1, 1), devices)
  rows = sharding.batch_sharding(mesh)
  params, opt_state = jax.device_put((params, opt_state),
                                     sharding.replicated(mesh))

  @jax.jit
  def step(params, opt_state, x, y, key):
    def loss_fn(p):
      out = model.apply({"params": p}, x.astype(jnp.float32) / 255.0,
                        train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(out[0], y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  start = time.time()
  in_flight = sharding.InFlight()  # a bounded queue of dispatched steps
  for i in range(steps):
    idx = rng.integers(0, len(images), batch_size)
    x, y = jax.device_put((augment(rng, images[idx]), labels[idx]), rows)
    params, opt_state, loss = step(params, opt_state, x, y,
                                   jax.random.PRNGKey(i))
    in_flight.push(loss)
    if log and (i + 1) % max(steps // 10, 1) == 0:
      log(f"{name} step {i + 1}/{steps} loss {float(loss):.3f} "
          f"({time.time() - start:.0f} s)")
  return params


def save(path: storage.PathLike, params, **meta: np.ndarray
         ) -> epath.Path:
  """Writes ``params`` (as ``a/b/kernel`` keys) and ``meta`` to an npz."""
  flat = flax.traverse_util.flatten_dict(jax.device_get(params), sep="/")
  return storage.save_npz(path, {**meta, **flat})


def load(path: storage.PathLike, meta: tuple[str, ...], what: str
         ) -> tuple[Any, dict[str, np.ndarray]]:
  """``(params, {name: value})`` from :func:`save`'s file.

  Raises:
    FileNotFoundError: no such file; ValueError: a ``meta`` key is missing.
  """
  if not storage.path(path).is_file():
    raise FileNotFoundError(f"{what} weights {path} do not exist")
  data = storage.load_npz(path)
  missing = [k for k in meta if k not in data]
  if missing:
    raise ValueError(f"{path} is not a {what} file (missing {missing})")
  values = {k: data[k] for k in meta}
  flat = {k: v for k, v in data.items() if k not in meta}
  return flax.traverse_util.unflatten_dict(flat, sep="/"), values
