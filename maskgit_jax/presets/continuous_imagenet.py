"""Masked generation over continuous latents on ImageNet 256: MAR-B's sizes.

Variants ``mar_base`` (default) and ``tiny`` (a CPU-sized model of the same
structure, for tests)::

    python train.py --config=configs/continuous_imagenet.py \
        --config.tokenizer_checkpoint=gs://BUCKET/kl16 \
        --config.data.name=latents:gs://BUCKET/latents_train.npz \
        --workdir=gs://BUCKET/mar_base

The tokenizer is :mod:`~maskgit_jax.presets.vae_imagenet` (KL-16: 16x16
latents of 16 channels); ``maskgit_jax.tools.pretokenize`` caches its
posterior means and their scale. As MAR (Li et al. 2024; LTH14/mar) for
MAR-B: diffusion head of 6 AdaLN blocks 1,024 wide, 1,000 cosine levels,
each masked token noised at 4 levels a step; one mask ratio per batch from
the truncated normal on [0.7, 1]; label drop 0.1; dropout 0.1; AdamW
(0.9, 0.95), weight decay 0.02, learning rate ``1e-4 * batch / 256`` at
batch 2,048 (8 accumulated micro-batches of 256: one step's activations fit a
32 GiB chip of a 4x4 slice, 24 GiB by ``maskgit_jax.tools.aot``), 100
warm-up epochs then constant, clip 3.0, EMA 0.9999 per update, 400 epochs; sampling 64 iterations, 100 head steps, guidance 2.9, temperature
1.0. Departures, stated: one bidirectional stack of 24 blocks (MAR-B's
12 encoder + 12 decoder blocks of 768, without the encoder's dropping of
masked tokens or the 64 buffer tokens); the head predicts epsilon only
(MAR also learns the variance); guidance is constant over the iterations
(MAR ramps it linearly).
"""

import ml_collections

from maskgit_jax.decoding import continuous_options
from maskgit_jax.presets import common
from maskgit_jax.presets import maskgit_imagenet
from maskgit_jax.presets import vae_imagenet

VARIANTS = ("mar_base", "tiny")
IMAGENET_TRAIN = 1_281_167  # images, for epochs -> steps


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = maskgit_imagenet.get_config("tiny" if variant == "tiny" else "256")
  config.stage = "continuous"
  config.variant = variant
  config.model = ml_collections.ConfigDict(dict(
      channels=vae_imagenet.LATENT_CHANNELS, num_classes=1000,
      num_tokens=common.token_count(config), hidden_size=768, num_layers=24,
      num_heads=12, mlp_dim=3072, dropout_rate=0.1,
      attention_dropout_rate=0.1))
  config.continuous = ml_collections.ConfigDict(dict(
      head="diffusion", head_width=1024, head_depth=6, num_mixtures=16,
      num_levels=1000, batch_mul=4, mask_ratio="mar", label_dropout=0.1))
  del config.masking
  del config.decode
  config.sampling = continuous_options.config_section(
      num_iter=64, steps=100, cfg_scale=2.9, temperature=1.0)
  batch, micro = 2048, 8  # MAR's batch as 8 accumulated micro-batches
  epoch = IMAGENET_TRAIN // batch  # 625 updates
  config.optimizer = ml_collections.ConfigDict(dict(
      learning_rate=1e-4 * batch / 256, warmup_steps=100 * epoch, b1=0.9,
      b2=0.95, weight_decay=0.02, grad_clip=3.0, schedule="constant",
      accumulation_steps=micro))
  # The EMA moves every micro-step: 0.9999 per update of the params.
  config.ema_decay = 0.9999 ** (1 / micro)
  config.data.name = "latents:latents_train.npz"
  config.latent_scale = ml_collections.config_dict.placeholder(float)
  config.update(batch_size=batch // micro, num_train_steps=400 * epoch * micro)
  if variant == "tiny":
    config.optimizer.accumulation_steps = 1
    config.ema_decay = 0.999
    config.model.update(num_classes=10, hidden_size=32, num_layers=2,
                        num_heads=2, mlp_dim=64)
    config.continuous.update(head_width=16, head_depth=1, num_levels=50,
                             batch_mul=2)
    config.sampling.update(num_iter=2, steps=5)
    config.optimizer.update(learning_rate=1e-3, warmup_steps=2)
    config.update(batch_size=8, num_train_steps=6, log_every_steps=2,
                  checkpoint_every_steps=3, preview_every_steps=0)
  return config
