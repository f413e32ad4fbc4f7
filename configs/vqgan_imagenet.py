"""Stage 1, the released VQGAN tokenizer on ImageNet: variants 256 (default), 512, tiny.

The settings live in :mod:`maskgit_jax.presets.imagenet_tokenizer` (so that an
installed package has them); override fields here for an experiment, or on
the command line (``--config.optimizer.learning_rate=2e-4``).
"""

import ml_collections

from maskgit_jax.presets import imagenet_tokenizer

VARIANTS = imagenet_tokenizer.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return imagenet_tokenizer.get_config(arg)
