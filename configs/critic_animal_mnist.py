"""A token critic of the demo's transformer: variants default, self, tiny.

    python train.py --config=configs/critic_animal_mnist.py \
        --config.generator_checkpoint=demo_out/maskgit \
        --config.data.name=tokens:demo_out/tokens_train.npz --workdir=runs/critic

The settings live in :mod:`maskgit_jax.presets.critic_animal_mnist`.
"""

import ml_collections

from maskgit_jax.presets import critic_animal_mnist

VARIANTS = critic_animal_mnist.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return critic_animal_mnist.get_config(arg)
