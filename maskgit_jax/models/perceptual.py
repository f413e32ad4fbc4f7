"""A perceptual distance from a network the project trains itself.

LPIPS needs ImageNet VGG weights that cannot be downloaded here; this is
the same kind of distance from a small VGG-style network trained by
:mod:`maskgit_jax.tools.train_perceptual` on the tokenizer's own training
split. ``mode="features"``: LPIPS without the learned linear layers (each
stage's features unit-normalised over channels, squared differences summed
over channels, averaged over positions, summed over stages).
``mode="logits"``: the squared distance between the two images' class
logits, the variant MaskBit reports as stronger than LPIPS.

It is deliberately not the demo's evaluation classifier
(:mod:`maskgit_jax.evaluation.classifier`): another architecture (two
convolutions per stage, average pooling, GroupNorm, SiLU) trained from
another seed, so a tokenizer is never trained against the judge.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

MODES = ("features", "logits")


class PerceptualNet(nn.Module):
  """Stages of two 3x3 convs (GroupNorm, SiLU) with 2x2 average pooling.

  Attributes:
    num_classes: classes of the training labels.
    widths: channels per stage.
  """

  num_classes: int
  widths: Sequence[int] = (32, 64, 96)

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False
               ) -> tuple[jax.Array, list[jax.Array]]:
    """images ``[b, H, W, 3]`` in [0, 1] -> (logits ``[b, C]``, the
    features ``[b, h_i, w_i, widths[i]]`` of every stage)."""
    del train  # no dropout or batch statistics
    x = images.astype(jnp.float32) * 2.0 - 1.0
    features = []
    for width in self.widths:
      for _ in range(2):
        x = nn.Conv(width, (3, 3))(x)
        x = nn.silu(nn.GroupNorm(num_groups=8)(x))
      features.append(x)
      x = nn.avg_pool(x, (2, 2), (2, 2))
    return nn.Dense(self.num_classes)(x.mean((1, 2))), features


def _unit(x: jax.Array, eps: float = 1e-10) -> jax.Array:
  return x / jnp.sqrt(jnp.sum(x * x, -1, keepdims=True) + eps)


def feature_distance(features_a: Sequence[jax.Array],
                     features_b: Sequence[jax.Array]) -> jax.Array:
  """LPIPS-style distance ``[b]`` between two lists of stage features."""
  total = 0.0
  for a, b in zip(features_a, features_b):
    total += jnp.mean(jnp.sum((_unit(a) - _unit(b)) ** 2, -1), axis=(1, 2))
  return total


class PerceptualDistance(nn.Module):
  """``(images_a, images_b) -> [b]`` distances; params are the net's.

  Interchangeable with :class:`maskgit_jax.models.lpips.LPIPS` in the
  tokenizer's train step (the network is frozen there).
  """

  num_classes: int
  widths: Sequence[int] = (32, 64, 96)
  mode: str = "features"

  @nn.compact
  def __call__(self, images_a: jax.Array, images_b: jax.Array) -> jax.Array:
    if self.mode not in MODES:
      raise ValueError(f"perceptual mode must be one of {MODES}, got "
                       f"{self.mode!r}")
    net = PerceptualNet(self.num_classes, tuple(self.widths), name="net")
    logits_a, features_a = net(images_a)
    logits_b, features_b = net(images_b)
    if self.mode == "logits":
      return jnp.mean((logits_a - logits_b) ** 2, -1)
    return feature_distance(features_a, features_b)
