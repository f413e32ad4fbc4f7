"""A token critic of the demo's transformer: variants default, self, tiny.

    python train.py --config=configs/critic_animal_mnist.py \
        --config.generator_checkpoint=demo_out/maskgit \
        --config.data.name=tokens:demo_out/tokens_train.npz --workdir=runs/critic

The settings live in :mod:`maskgit_jax.presets.animal_mnist_critic`.
"""

import ml_collections

from maskgit_jax.presets import animal_mnist_critic

VARIANTS = animal_mnist_critic.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return animal_mnist_critic.get_config(arg)
