"""Stage 1 on animal-MNIST (32x32 silhouettes): the demo tokenizer.

Variants: ``default`` (the demo: 8x8 tokens, 128 codes, L2 and perceptual
losses, no GAN; stage times in docs/demo.md),
``long`` (``make demo DEMO=long``: the same recipe for 2,400 steps) and
``tiny`` (for tests).
"""

import ml_collections

from maskgit_jax.presets import common
from maskgit_jax.presets import vqgan_imagenet

VARIANTS = ("default", "long", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = vqgan_imagenet.get_config("tiny" if variant == "tiny" else "256")
  config.variant = variant
  config.image_size = 32
  config.data.update(name="animal_mnist", split="train", min_scale=1.0,
                     flip=True)
  config.model.update(filters=32, num_res_blocks=1,
                      channel_multipliers=(1, 2, 2), embedding_dim=32,
                      codebook_size=128)
  config.discriminator.update(filters=32, channel_multipliers=(1, 2, 2))
  # Measured on the demo (300 steps, held-out PSNR): the official recipe
  # (Adam b1=0, entropy loss 0.1) 15.2 dB; without the entropy loss 16.4 dB;
  # without it and with b1=0.9 19.4 dB. Dead codes are restarted instead.
  config.model.update(entropy_loss_ratio=0.0)
  config.optimizer.update(learning_rate=1e-3, b1=0.9)
  config.disc_optimizer.update(learning_rate=1e-4)
  # The discriminator starts after the last step: no adversarial loss (it
  # doubles the step cost; the XLA CPU convolutions are the bottleneck).
  config.losses.update(discriminator_start_step=850, dead_code_restart=True)
  # The perceptual term (weight 0.1) needs ``config.perceptual_network``: a
  # file from ``python -m maskgit_jax.tools.train_perceptual`` (the demo trains
  # one, 800 steps, first); without it the term is off. At equal cost,
  # reconstruction FID 16.7 against 26.1 for L2 alone (1,059 vs 1,199
  # steps; docs/studies/tokenizer_study.md). 850 steps: demo runs with
  # 1,060, 850 and 700 steps reached reconstruction FID 19.4, 20.2 and 34.3
  # (classifier FID 28.4, 26.8 and 45.8; docs/studies/demo_efficiency.md).
  config.losses.update(perceptual_weight=0.1)
  config.update(batch_size=32, num_train_steps=850, log_every_steps=100,
                checkpoint_every_steps=425, preview_every_steps=425)
  if variant == "long":
    # The default's recipe (L2 + perceptual 0.1) for 2,400 steps: 13.6
    # minutes, PSNR 24.0 dB, reconstruction FID 10.9. The previous long
    # recipe, L2 only for 3,000 steps, took 23 minutes for PSNR 26.1 dB and
    # reconstruction FID 16.0 (docs/demo.md).
    config.losses.update(discriminator_start_step=2400)
    config.update(num_train_steps=2400, checkpoint_every_steps=800,
                  preview_every_steps=1200)
  if variant == "tiny":
    config.model.update(num_res_blocks=1, channel_multipliers=(1, 2),
                        embedding_dim=16, codebook_size=32)
    config.discriminator.update(filters=16, channel_multipliers=(1, 2))
    config.image_size = 16  # downscaled: 4x cheaper convolutions on CPU
    # As the default: no adversarial loss (not in any run the tests make;
    # the loop's GAN phases have their own test).
    config.losses.update(discriminator_start_step=1_000_000)
    config.update(batch_size=8, num_train_steps=6, log_every_steps=2,
                  checkpoint_every_steps=3, preview_every_steps=3)
  return config
