"""Configs the library itself needs, importable wherever it is installed.

Each module has ``get_config(variant=None) -> ml_collections.ConfigDict``
(and ``VARIANTS``); the top-level ``configs/`` files of a checkout are the
experiment configs that ``train.py --config=...`` loads, built on these.

* :mod:`~maskgit_jax.presets.common`: seed, mesh, logical-axis rules.
* :mod:`~maskgit_jax.presets.imagenet_tokenizer`: the released VQGAN
  (``256``, ``512``, ``tiny``).
* :mod:`~maskgit_jax.presets.imagenet_transformer`: the released MaskGIT
  transformer and its decode defaults (``256``, ``512``, ``tiny``).
* :mod:`~maskgit_jax.presets.animal_mnist_tokenizer`,
  :mod:`~maskgit_jax.presets.animal_mnist_transformer`: the demo's two
  stages (``default``, ``long``, ``tiny``);
  :mod:`~maskgit_jax.presets.animal_mnist_critic`: a token critic of the
  demo's transformer (``default``, ``self``, ``tiny``);
  :mod:`~maskgit_jax.presets.animal_mnist_ar`: the autoregressive prior on
  the demo's tokens (``default``, ``long``, ``tiny``).
* :mod:`~maskgit_jax.presets.imagenet_mage`,
  :mod:`~maskgit_jax.presets.animal_mnist_mage`: MAGE (``vit_base``,
  ``vit_large``, ``tiny``; ``default``, ``tiny``).

    from maskgit_jax import presets
    config = presets.get_config("imagenet_transformer", "tiny")
"""

from __future__ import annotations

import importlib

import ml_collections

NAMES = ("imagenet_tokenizer", "imagenet_transformer",
         "animal_mnist_tokenizer", "animal_mnist_transformer",
         "animal_mnist_critic", "animal_mnist_ar", "imagenet_mage",
         "animal_mnist_mage")


def get_config(name: str, variant: str | None = None
               ) -> ml_collections.ConfigDict:
  """The preset ``name`` (one of :data:`NAMES`) at ``variant``.

  Raises:
    ValueError: for an unknown name or variant.
  """
  if name not in NAMES:
    raise ValueError(f"unknown preset {name!r}; expected one of {NAMES}")
  module = importlib.import_module(f"maskgit_jax.presets.{name}")
  return module.get_config(variant)
