"""Pure loss functions for tokenizer training (keyword-only, float32 results).

Reconstruction (L1/L2), GAN losses (non-saturating and hinge), the R1
gradient penalty, LeCam regularisation and the perceptual loss. The
transformer's MVTM loss lives in :mod:`maskgit_jax.objectives.mvtm`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def _f32(x):
  return jnp.asarray(x, jnp.float32)


def l1_loss(*, predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean absolute error over every element."""
  return jnp.mean(jnp.abs(_f32(predictions) - _f32(targets)))


def l2_loss(*, predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean squared error over every element."""
  return jnp.mean((_f32(predictions) - _f32(targets)) ** 2)


RECONSTRUCTION_LOSSES = {"l1": l1_loss, "l2": l2_loss}


def reconstruction_loss(kind: str) -> Callable[..., jax.Array]:
  """The reconstruction loss named ``kind`` ("l1" or "l2")."""
  if kind not in RECONSTRUCTION_LOSSES:
    raise ValueError(f"reconstruction loss must be one of "
                     f"{sorted(RECONSTRUCTION_LOSSES)}, got {kind!r}")
  return RECONSTRUCTION_LOSSES[kind]


def non_saturating_generator_loss(*, fake_logits: jax.Array) -> jax.Array:
  """``E[softplus(-D(G(z)))] = -E[log sigmoid(D(G(z)))]``."""
  return jnp.mean(jax.nn.softplus(-_f32(fake_logits)))


def non_saturating_discriminator_loss(*, real_logits: jax.Array,
                                      fake_logits: jax.Array) -> jax.Array:
  """``E[softplus(-D(x))] + E[softplus(D(G(z)))]``."""
  return (jnp.mean(jax.nn.softplus(-_f32(real_logits))) +
          jnp.mean(jax.nn.softplus(_f32(fake_logits))))


def hinge_generator_loss(*, fake_logits: jax.Array) -> jax.Array:
  """``-E[D(G(z))]``."""
  return -jnp.mean(_f32(fake_logits))


def hinge_discriminator_loss(*, real_logits: jax.Array,
                             fake_logits: jax.Array) -> jax.Array:
  """``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``."""
  return (jnp.mean(jax.nn.relu(1.0 - _f32(real_logits))) +
          jnp.mean(jax.nn.relu(1.0 + _f32(fake_logits))))


GAN_LOSSES = {
    "non_saturating": (non_saturating_generator_loss,
                       non_saturating_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
}


def gan_losses(kind: str):
  """``(generator_loss, discriminator_loss)`` for ``kind``."""
  if kind not in GAN_LOSSES:
    raise ValueError(f"GAN loss must be one of {sorted(GAN_LOSSES)}, "
                     f"got {kind!r}")
  return GAN_LOSSES[kind]


def r1_penalty(*, discriminator_fn: Callable[[jax.Array], jax.Array],
               images: jax.Array) -> jax.Array:
  """R1 (Mescheder et al., 2018): ``E_x[ |grad_x D(x)|^2 ]`` on real images.

  Args:
    discriminator_fn: images ``[b, H, W, C]`` -> logits ``[b]``.
    images: real images ``[b, H, W, C]``.

  Returns:
    Mean over the batch of the squared gradient norm (unweighted; the config
    multiplies it by the R1 cost, 10 in the official recipe).
  """
  grads = jax.grad(lambda x: jnp.sum(discriminator_fn(x)))(_f32(images))
  return jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1))


def lecam_regularization(*, real_logits: jax.Array, fake_logits: jax.Array,
                         ema_real: jax.Array, ema_fake: jax.Array) -> jax.Array:
  """LeCam (Tseng et al., 2021): keeps D's outputs near the other side's EMA.

  ``E[relu(D(x) - ema_fake)^2] + E[relu(ema_real - D(G(z)))^2]``.
  """
  return (jnp.mean(jax.nn.relu(_f32(real_logits) - ema_fake) ** 2) +
          jnp.mean(jax.nn.relu(ema_real - _f32(fake_logits)) ** 2))


def perceptual_loss(*, distance_fn: Callable[[jax.Array, jax.Array], jax.Array],
                    predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean of a perceptual distance (e.g. LPIPS) over the batch.

  Args:
    distance_fn: ``(a [b, H, W, 3], b [b, H, W, 3]) -> [b]`` distances.
    predictions, targets: images in [0, 1].
  """
  return jnp.mean(_f32(distance_fn(predictions, targets)))


def adaptive_weight(*, reconstruction_grad: jax.Array,
                    adversarial_grad: jax.Array, max_weight: float = 1e4,
                    eps: float = 1e-4) -> jax.Array:
  """VQGAN's adaptive adversarial weight (Esser et al. 2021, eq. 7).

  ``|grad_L rec| / (|grad_L adv| + eps)``, clipped to ``[0, max_weight]``
  and without gradient, where both gradients are taken with respect to the
  decoder's last layer ``L``: the adversarial term is scaled to pull as
  hard as the reconstruction term does.
  """
  ratio = jnp.linalg.norm(_f32(reconstruction_grad)) / (
      jnp.linalg.norm(_f32(adversarial_grad)) + eps)
  return jax.lax.stop_gradient(jnp.clip(ratio, 0.0, max_weight))
