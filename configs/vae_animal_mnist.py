"""Stage 1 as a VAE (continuous latents): see :mod:`maskgit_jax.presets.vae_animal_mnist`.

Override fields here for an experiment, or on the command line.
"""

import ml_collections

from maskgit_jax.presets import vae_animal_mnist

VARIANTS = vae_animal_mnist.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae_animal_mnist.get_config(arg)
