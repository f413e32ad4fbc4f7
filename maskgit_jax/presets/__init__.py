"""Configs the library itself needs, importable wherever it is installed.

Each module has ``get_config(variant=None) -> ml_collections.ConfigDict``
(and ``VARIANTS``); the top-level ``configs/`` files of a checkout are the
experiment configs that ``train.py --config=...`` loads, built on these.

* :mod:`~maskgit_jax.presets.common`: seed, mesh, logical-axis rules.
* :mod:`~maskgit_jax.presets.vqgan_imagenet`: the released VQGAN
  (``256``, ``512``, ``tiny``).
* :mod:`~maskgit_jax.presets.maskgit_imagenet`: the released MaskGIT
  transformer and its decode defaults (``256``, ``512``, ``tiny``).
* :mod:`~maskgit_jax.presets.vqgan_animal_mnist`,
  :mod:`~maskgit_jax.presets.maskgit_animal_mnist`: the demo's two
  stages (``default``, ``long``, ``tiny``);
  :mod:`~maskgit_jax.presets.critic_animal_mnist`: a token critic of the
  demo's transformer (``default``, ``self``, ``tiny``);
  :mod:`~maskgit_jax.presets.ar_animal_mnist`: the autoregressive prior on
  the demo's tokens (``default``, ``long``, ``tiny``).
* :mod:`~maskgit_jax.presets.mage_imagenet`,
  :mod:`~maskgit_jax.presets.mage_animal_mnist`: MAGE (``vit_base``,
  ``vit_large``, ``tiny``; ``default``, ``tiny``).
* :mod:`~maskgit_jax.presets.vae_imagenet`,
  :mod:`~maskgit_jax.presets.vae_animal_mnist`: stage 1 as a VAE
  (continuous latents; ``256``, ``tiny``; ``default``, ``tiny``);
  :mod:`~maskgit_jax.presets.continuous_imagenet`,
  :mod:`~maskgit_jax.presets.continuous_animal_mnist`: masked generation
  over the VAE's latents (MAR's diffusion head or GIVT's mixture head;
  ``mar_base``, ``tiny``; ``default``, ``tiny``).

    from maskgit_jax import presets
    config = presets.get_config("maskgit_imagenet", "tiny")
"""

from __future__ import annotations

import importlib

import ml_collections

NAMES = ("vqgan_imagenet", "maskgit_imagenet",
         "vqgan_animal_mnist", "maskgit_animal_mnist",
         "critic_animal_mnist", "ar_animal_mnist", "mage_imagenet",
         "mage_animal_mnist", "vae_imagenet", "vae_animal_mnist",
         "continuous_imagenet", "continuous_animal_mnist")


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
