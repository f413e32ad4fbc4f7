"""The autoregressive prior (VQGAN's stage 2) on animal-MNIST tokens.

    python train.py --config=configs/ar_animal_mnist.py \
        --config.tokenizer_checkpoint=demo_out/tokenizer \
        --config.data.name=tokens:demo_out/tokens_train.npz --workdir=runs/ar

Variants ``default``, ``long``, ``tiny``; the settings live in
:mod:`maskgit_jax.presets.animal_mnist_ar`.
"""

import ml_collections

from maskgit_jax.presets import animal_mnist_ar

VARIANTS = animal_mnist_ar.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return animal_mnist_ar.get_config(arg)
