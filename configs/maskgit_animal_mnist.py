"""Stage 2 of the demo on animal-MNIST: variants default, long, tiny.

The settings live in :mod:`maskgit_jax.presets.maskgit_animal_mnist` (so that an
installed package has them); override fields here for an experiment, or on
the command line (``--config.optimizer.learning_rate=2e-4``).
"""

import ml_collections

from maskgit_jax.presets import maskgit_animal_mnist

VARIANTS = maskgit_animal_mnist.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return maskgit_animal_mnist.get_config(arg)
