"""MAGE on ImageNet 256: variants vit_base (default), vit_large, tiny.

    python train.py --config=configs/mage_imagenet.py:vit_large \
        --config.tokenizer_checkpoint=runs/tok256 --workdir=gs://...

The settings live in :mod:`maskgit_jax.presets.mage_imagenet`.
"""

import ml_collections

from maskgit_jax.presets import mage_imagenet

VARIANTS = mage_imagenet.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return mage_imagenet.get_config(arg)
