"""The autoregressive prior (VQGAN's stage 2) on animal-MNIST tokens.

    python train.py --config=configs/ar_animal_mnist.py \
        --config.tokenizer_checkpoint=demo_out/tokenizer \
        --config.data.name=tokens:demo_out/tokens_train.npz --workdir=runs/ar

Variants ``default``, ``long``, ``tiny``; the settings live in
:mod:`maskgit_jax.presets.ar_animal_mnist`.
"""

import ml_collections

from maskgit_jax.presets import ar_animal_mnist

VARIANTS = ar_animal_mnist.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return ar_animal_mnist.get_config(arg)
