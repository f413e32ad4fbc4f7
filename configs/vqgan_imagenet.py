"""Stage 1, the released VQGAN tokenizer on ImageNet: variants 256 (default), 512, tiny.

The settings live in :mod:`maskgit_jax.presets.vqgan_imagenet` (so that an
installed package has them); override fields here for an experiment, or on
the command line (``--config.optimizer.learning_rate=2e-4``).
"""

import ml_collections

from maskgit_jax.presets import vqgan_imagenet

VARIANTS = vqgan_imagenet.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vqgan_imagenet.get_config(arg)
