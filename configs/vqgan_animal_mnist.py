"""Stage 1 of the demo on animal-MNIST: variants default, long, tiny.

The settings live in :mod:`maskgit_jax.presets.animal_mnist_tokenizer` (so that an
installed package has them); override fields here for an experiment, or on
the command line (``--config.optimizer.learning_rate=2e-4``).
"""

import ml_collections

from maskgit_jax.presets import animal_mnist_tokenizer

VARIANTS = animal_mnist_tokenizer.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return animal_mnist_tokenizer.get_config(arg)
