"""MAGE on ImageNet 256 (Li et al., CVPR 2023): ViT-B and ViT-L on our tokenizer.

Variants ``vit_base`` (default), ``vit_large`` and ``tiny`` (a CPU-sized
model of the same structure, for tests)::

    python train.py --config=configs/mage_imagenet.py:vit_large \
        --config.tokenizer_checkpoint=runs/tok256 --workdir=gs://...

Sizes as the paper and LTH14/mage (``models_mage.py``): ViT-B encoder 768
wide, 12 blocks, 12 heads; ViT-L 1024, 24, 16; the decoder 8 blocks of the
encoder's width with 16 heads; MLP ratio 4; dropout 0.1. Corruption: the
truncated-normal ratio (mean 0.55, std 0.25 on [0.5, 1]), one per batch;
label smoothing 0.1. Optimisation as the reference's pre-training command:
AdamW (0.9, 0.95), weight decay 0.05 on matrices only, learning rate
``1.5e-4 * 4096 / 256`` at batch 4,096, 40 warmup epochs then cosine over
1,600 epochs, gradient clipping 3.0; augmentation random-resized crop
(scale 0.2-1) and flips. Generation: 20 steps, choice temperature 6.0,
cosine, no softmax temperature (the README's ``gen_img_uncond`` command).
Beyond the reference, the library keeps a parameter EMA (0.999) and
samples from it by default (``use_ema=False`` reads the raw params).
"""

import ml_collections

from maskgit_jax.decoding import decode_options

from maskgit_jax.presets import common
from maskgit_jax.presets import maskgit_imagenet

VARIANTS = ("vit_base", "vit_large", "tiny")
IMAGENET_TRAIN = 1_281_167  # images, for epochs -> steps
SIZES = {  # hidden, encoder blocks, encoder heads
    "vit_base": (768, 12, 12), "vit_large": (1024, 24, 16), "tiny": (32, 2, 2)}


def set_mage_sections(config: ml_collections.ConfigDict) -> None:
  """Replaces MaskGIT's ``masking`` by MAGE's ``mage`` section (the
  reference's corruption and loss; MAGE-C's contrastive term off, no
  projector) and sets the reference's generation."""
  del config.masking
  config.mage = ml_collections.ConfigDict(dict(
      ratio="truncnorm", fixed_ratio=0.75, per_sample_ratio=False,
      label_smoothing=0.1, contrastive_weight=0.0,
      contrastive_temperature=0.1))
  config.model.projection_dim = 0
  config.decode = decode_options.config_section(
      num_iter=20, choice_temperature=6.0, sampler="cdf")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = maskgit_imagenet.get_config("tiny" if variant == "tiny"
                                           else "256")
  config.stage = "mage"
  config.variant = variant
  hidden, layers, heads = SIZES[variant]
  config.model = ml_collections.ConfigDict(dict(
      codebook_size=config.model.codebook_size, num_tokens=common.token_count(config),
      hidden_size=hidden, encoder_layers=layers, encoder_heads=heads,
      decoder_size=hidden, decoder_layers=8, decoder_heads=16, mlp_ratio=4,
      dropout_rate=0.1))
  set_mage_sections(config)
  batch = 4096
  epoch = IMAGENET_TRAIN // batch  # 312 steps
  config.optimizer = ml_collections.ConfigDict(dict(
      learning_rate=1.5e-4 * batch / 256, warmup_steps=40 * epoch, b1=0.9,
      b2=0.95, weight_decay=0.05, decay_matrices_only=True, grad_clip=3.0,
      schedule="cosine", accumulation_steps=1))
  config.data.update(min_scale=0.2, flip=True)
  config.update(batch_size=batch, num_train_steps=1600 * epoch)
  if variant == "tiny":
    config.model.update(decoder_layers=1, decoder_heads=2, dropout_rate=0.0)
    config.optimizer.update(learning_rate=1e-3, warmup_steps=2)
    config.update(batch_size=8, num_train_steps=6, log_every_steps=2,
                  checkpoint_every_steps=3, preview_every_steps=3)
  return config
