"""Masked generation over continuous latents on ImageNet 256 (MAR-B's sizes):
see :mod:`maskgit_jax.presets.continuous_imagenet`.

Override fields here for an experiment, or on the command line.
"""

import ml_collections

from maskgit_jax.presets import continuous_imagenet

VARIANTS = continuous_imagenet.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return continuous_imagenet.get_config(arg)
