"""Masked generation over continuous latents: see :mod:`maskgit_jax.presets.continuous_animal_mnist`.

Override fields here for an experiment, or on the command line.
"""

import ml_collections

from maskgit_jax.presets import continuous_animal_mnist

VARIANTS = continuous_animal_mnist.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return continuous_animal_mnist.get_config(arg)
