"""MAGE on ImageNet 256: variants vit_base (default), vit_large, tiny.

    python train.py --config=configs/mage_imagenet.py:vit_large \
        --config.tokenizer_checkpoint=runs/tok256 --workdir=gs://...

The settings live in :mod:`maskgit_jax.presets.imagenet_mage`.
"""

import ml_collections

from maskgit_jax.presets import imagenet_mage

VARIANTS = imagenet_mage.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return imagenet_mage.get_config(arg)
