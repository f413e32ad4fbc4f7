"""Stage 2: the MaskGIT transformer on ImageNet (released 256/512 settings).

Variants: ``256`` (default), ``512`` and ``tiny`` (a CPU-sized model with the
same structure, for tests)::

    --config=configs/maskgit_imagenet.py:512   # or presets.get_config(
                                                #    "maskgit_imagenet", "512")

``config.model`` holds exactly the fields of
:class:`maskgit_jax.models.transformer.Transformer`, so
``Transformer(**config.model)`` builds it.
"""

import ml_collections

from maskgit_jax.decoding import decode_options

from maskgit_jax.presets import common

VARIANTS = ("256", "512", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = common.get_config()
  config.stage = "transformer"
  config.variant = variant
  # "tiny" matches the tiny tokenizer (16x16 images, factor 2): an 8x8 grid.
  config.image_size = {"256": 256, "512": 512, "tiny": 16}[variant]
  config.token_factor = 16 if variant != "tiny" else 2  # pixels per token side

  config.model = ml_collections.ConfigDict(dict(
      codebook_size=1024,
      num_classes=1000,
      hidden_size=768,
      num_layers=24,
      num_heads=16,  # the paper's text says 8; the released weights have 16
      mlp_dim=3072,
      max_position_embeddings=common.token_count(config) + 1,
      dropout_rate=0.1,
      attention_dropout_rate=0.1,
      initializer_range=0.02,
      attention_impl="einsum",
      remat=False,
      dtype="float32",
      param_dtype="float32",
      norm="post",  # the official blocks; "pre": the prior's (pre-LN)
  ))

  # Masked visual token modeling (paper Section 3.1).
  config.masking = ml_collections.ConfigDict(dict(
      schedule="cosine",
      # How each image's masked share is drawn: "schedule" (the paper,
      # gamma(U)), "mar" or "emigm" (skewed high; objectives/mvtm.py).
      mask_ratio="schedule",
      min_mask_rate=0.0,
      label_smoothing=0.1,
      loss_on="masked",
      # Beyond the paper, opt-in: > 0 replaces that share of labels by a
      # null class (one extra class token) for classifier-free guidance.
      label_dropout=0.0,
      # True: every label is 0 and the data's labels are ignored (set
      # model.num_classes = 1, no label dropout): an unconditional MaskGIT.
      unconditional=False,
  ))

  # Parallel decoding (paper Section 3.2 and Table 1: T=8 at 256, 12 at 512):
  # every decode option (maskgit_jax.decoding.decode_options), read by the previews,
  # the Generator and sample.py as their defaults. cfg_scale (classifier-
  # free guidance) needs a model trained with label dropout. The sampler is
  # the inverse-CDF draw: the official distribution from fewer random
  # numbers (the official Gumbel-max draw: sampler="gumbel").
  config.decode = decode_options.config_section(
      num_iter=12 if variant == "512" else 8, sampler="cdf")

  # Training (paper Section 4.1): batch 256, Adam(0.9, 0.96), lr 1e-4 with
  # 5k warmup, weight decay 0.045, EMA 0.999.
  config.optimizer = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, warmup_steps=5000, b1=0.9, b2=0.96,
      weight_decay=0.045, grad_clip=1.0, schedule="cosine",
      accumulation_steps=1))
  config.ema_decay = 0.999
  config.num_train_steps = 1_500_000  # ~300 epochs of ImageNet at batch 256
  # The stage-1 workdir (or imported checkpoint dir) whose tokenizer makes
  # the training tokens.
  config.tokenizer_checkpoint = ml_collections.config_dict.placeholder(str)

  if variant == "tiny":
    config.model.update(
        codebook_size=64, num_classes=10, hidden_size=64, num_layers=2,
        num_heads=2, mlp_dim=128, initializer_range=0.02)
    config.optimizer.update(warmup_steps=10, learning_rate=1e-3)
    config.update(batch_size=8, num_train_steps=20, log_every_steps=5,
                  checkpoint_every_steps=10, preview_every_steps=0)
  return config
