"""A KL-regularised VAE tokenizer on animal-MNIST: the demo tokenizer's
encoder, decoder, losses and budget with a Gaussian posterior in place of
the quantizer.

Variants ``default`` (8x8 latents of 16 channels, KL weight 1e-6) and
``tiny`` (tests). The latent width and the KL weight are starting points,
not measured choices.
"""

import ml_collections

from maskgit_jax.presets import common
from maskgit_jax.presets import vae_imagenet
from maskgit_jax.presets import vqgan_animal_mnist

VARIANTS = ("default", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = vqgan_animal_mnist.get_config(variant)
  config.variant = variant
  config.model.update(quantizer_type="kl", kl_weight=vae_imagenet.KL_WEIGHT,
                      embedding_dim=vae_imagenet.LATENT_CHANNELS)
  config.losses.dead_code_restart = False  # no codes
  return config
