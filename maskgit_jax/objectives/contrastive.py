"""InfoNCE between two views of each example (SimCLR's NT-Xent).

MAGE-C (Li et al., CVPR 2023) adds such a loss on a projection of MAGE's
pooled encoder output; its constants were never published (the library's
own choices are in ``presets/mage_animal_mnist.py``, variant "contrastive").

For ``z1, z2 [b, d]`` (views of the same ``b`` examples), the ``2b``
projections are L2-normalised; each one's positive is the other view of
its example and its negatives are the other ``2b - 2`` projections:

    loss = mean_i -log softmax_j!=i (cos(z_i, z_j) / temperature)[pair(i)]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def info_nce(z1: jax.Array, z2: jax.Array, temperature: float
             ) -> tuple[jax.Array, jax.Array]:
  """``(loss, accuracy)``: the mean NT-Xent over the ``2b`` projections of
  ``z1, z2 [b, d]`` (float32) and how often the positive is each one's most
  similar other projection. ``temperature > 0``."""
  if z1.shape != z2.shape or z1.ndim != 2:
    raise ValueError(f"views must both be [b, d], got {z1.shape} and "
                     f"{z2.shape}")
  batch = z1.shape[0]
  z = jnp.concatenate([z1, z2]).astype(jnp.float32)
  z = z * jax.lax.rsqrt(jnp.maximum(jnp.sum(z * z, -1, keepdims=True),
                                    1e-12))
  logits = z @ z.T / temperature
  logits = jnp.where(jnp.eye(2 * batch, dtype=bool), -jnp.inf, logits)
  pair = jnp.concatenate([jnp.arange(batch) + batch, jnp.arange(batch)])
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  loss = -jnp.take_along_axis(log_probs, pair[:, None], axis=-1).mean()
  accuracy = (jnp.argmax(logits, -1) == pair).mean()
  return loss, accuracy
