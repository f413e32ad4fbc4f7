"""Stage 2: the MaskGIT transformer on ImageNet (released 256/512 settings).

Variants: ``256`` (default), ``512`` and ``tiny`` (a CPU-sized model with the
same structure, for tests)::

    --config=configs/maskgit_imagenet.py:512

``config.model`` holds exactly the fields of
:class:`maskgit_jax.models.transformer.Transformer`, so
``Transformer(**config.model)`` builds it.
"""

import ml_collections

from configs import common

VARIANTS = ("256", "512", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = arg or "256"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
  config = common.get_config()
  config.stage = "transformer"
  config.variant = variant
  config.image_size = {"256": 256, "512": 512, "tiny": 32}[variant]
  config.token_factor = 16 if variant != "tiny" else 4  # pixels per token side
  latent = config.image_size // config.token_factor

  config.model = ml_collections.ConfigDict(dict(
      codebook_size=1024,
      num_classes=1000,
      hidden_size=768,
      num_layers=24,
      num_heads=16,  # the paper's text says 8; the released weights have 16
      mlp_dim=3072,
      max_position_embeddings=latent * latent + 1,
      dropout_rate=0.1,
      attention_dropout_rate=0.1,
      initializer_range=0.02,
      attention_impl="einsum",
      remat=False,
      dtype="float32",
      param_dtype="float32",
  ))

  # Masked visual token modeling (paper Section 3.1).
  config.masking = ml_collections.ConfigDict(dict(
      schedule="cosine",
      min_mask_rate=0.0,
      label_smoothing=0.1,
      loss_on="masked",
  ))

  # Parallel decoding (paper Section 3.2 and Table 1: T=8 at 256, 12 at 512).
  config.decode = ml_collections.ConfigDict(dict(
      num_iter=12 if variant == "512" else 8,
      choice_temperature=4.5,
      temperature=1.0,
      schedule="cosine",
  ))

  if variant == "tiny":
    config.model.update(
        codebook_size=64, num_classes=10, hidden_size=64, num_layers=2,
        num_heads=2, mlp_dim=128, initializer_range=0.02)
  return config
