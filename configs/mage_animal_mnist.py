"""MAGE on animal-MNIST tokens (unconditional generation + representations).

    python train.py --config=configs/mage_animal_mnist.py \
        --config.tokenizer_checkpoint=demo_out/tokenizer \
        --config.data.name=tokens:demo_out/tokens_train.npz --workdir=runs/mage

Variants ``default``, ``tiny``; the settings live in
:mod:`maskgit_jax.presets.animal_mnist_mage`.
"""

import ml_collections

from maskgit_jax.presets import animal_mnist_mage

VARIANTS = animal_mnist_mage.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return animal_mnist_mage.get_config(arg)
