"""Stage 1: the VQGAN tokenizer on ImageNet (released architecture).

Variants: ``256`` (default), ``512`` (same network; the released 512
tokenizer has the same parameter shapes) and ``tiny`` (CPU-sized, for tests).

``config.model`` holds exactly the fields of
:class:`maskgit_jax.models.vqgan.VQGAN`; ``config.discriminator`` those of
:class:`maskgit_jax.models.discriminator.StyleGANDiscriminator`;
``config.losses`` those of
:class:`maskgit_jax.trainers.tokenizer_step.LossWeights`.
"""

import ml_collections

from maskgit_jax.presets import common

VARIANTS = ("256", "512", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = common.get_config()
  config.stage = "tokenizer"
  config.variant = variant
  config.image_size = {"256": 256, "512": 512, "tiny": 16}[variant]

  config.model = ml_collections.ConfigDict(dict(
      filters=128,
      num_res_blocks=2,
      channel_multipliers=(1, 1, 2, 2, 4),
      embedding_dim=256,
      codebook_size=1024,
      conv_downsample=False,
      shortcut="official",
      commitment_cost=0.25,
      entropy_loss_ratio=0.1,
      entropy_temperature=0.01,
      entropy_loss_type="softmax",
      dtype="float32",
      param_dtype="float32",
  ))
  config.discriminator = ml_collections.ConfigDict(dict(
      filters=128,
      channel_multipliers=(2, 4, 4, 4, 4),
      dtype="float32",
      param_dtype="float32",
  ))
  config.losses = ml_collections.ConfigDict(dict(
      reconstruction="l2",
      reconstruction_weight=1.0,
      perceptual_weight=0.1,
      gan_loss="non_saturating",
      adversarial_weight=0.1,
      r1_cost=10.0,
      lecam_weight=0.0,
      lecam_decay=0.999,
      discriminator_start_step=0,
      dead_code_restart=False,
      usage_decay=0.99,
      dead_code_threshold=0.03,
  ))
  # LPIPS-VGG weights file (maskgit_jax/tools/convert_lpips_weights.py); None disables
  # the perceptual loss.
  config.perceptual_weights = None
  # Or a network trained here (python -m maskgit_jax.tools.train_perceptual),
  # compared by its features ("features") or its logits ("logits").
  config.perceptual_network = None
  config.perceptual_mode = "features"
  # Adam(b1=0, b2=0.99) for both networks, as in the official config.
  config.optimizer = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, b1=0.0, b2=0.99, grad_clip=None))
  config.disc_optimizer = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, b1=0.0, b2=0.99, grad_clip=None))
  config.num_train_steps = 1_000_000

  if variant == "tiny":
    config.model.update(filters=32, num_res_blocks=1,
                        channel_multipliers=(1, 2), embedding_dim=16,
                        codebook_size=64)
    config.discriminator.update(filters=16, channel_multipliers=(1, 2))
    config.update(batch_size=8, num_train_steps=20, log_every_steps=5,
                  checkpoint_every_steps=10, preview_every_steps=0)
  return config
