"""A KL-regularised VAE tokenizer on ImageNet: MAR's KL-16 sizes on the
released VQGAN's encoder and decoder.

Variants: ``256`` (default: 256x256 images, factor 16, 16 latent channels,
KL weight 1e-6 as latent diffusion's KL autoencoders) and ``tiny`` (tests).
Everything else (losses, optimizers, discriminator) is
:mod:`maskgit_jax.presets.vqgan_imagenet`'s. The latents are continuous:
:mod:`maskgit_jax.presets.continuous_imagenet` generates over them (MAR-B's
sizes).
"""

import ml_collections

from maskgit_jax.presets import common
from maskgit_jax.presets import vqgan_imagenet

VARIANTS = ("256", "tiny")
LATENT_CHANNELS = 16
KL_WEIGHT = 1e-6


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = vqgan_imagenet.get_config(variant)
  config.variant = variant
  config.model.update(quantizer_type="kl", kl_weight=KL_WEIGHT,
                      embedding_dim=LATENT_CHANNELS)
  config.losses.dead_code_restart = False  # no codes
  return config
