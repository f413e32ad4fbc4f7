"""Stage 1 as a VAE (continuous latents): see :mod:`maskgit_jax.presets.vae_imagenet`.

Override fields here for an experiment, or on the command line.
"""

import ml_collections

from maskgit_jax.presets import vae_imagenet

VARIANTS = vae_imagenet.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae_imagenet.get_config(arg)
