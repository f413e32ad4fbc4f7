"""MAGE on animal-MNIST tokens (unconditional generation + representations).

    python train.py --config=configs/mage_animal_mnist.py \
        --config.tokenizer_checkpoint=demo_out/tokenizer \
        --config.data.name=tokens:demo_out/tokens_train.npz --workdir=runs/mage

Variants ``default``, ``tiny``; the settings live in
:mod:`maskgit_jax.presets.mage_animal_mnist`.
"""

import ml_collections

from maskgit_jax.presets import mage_animal_mnist

VARIANTS = mage_animal_mnist.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return mage_animal_mnist.get_config(arg)
