"""Masked generation over continuous latents on animal-MNIST (issue 29).

The demo transformer's size, batch and budget (hidden 128, 4 layers, 4
heads, MLP 512; batch 64; 1,450 steps; AdamW at 3e-3) as the body of
:class:`~maskgit_jax.models.continuous_transformer.ContinuousTransformer`
over the latents of ``vae_animal_mnist`` (8x8 tokens of 16 channels),
with MAR's diffusion head (width 256, depth 3, 1,000 levels, 4 noise
draws per token) or GIVT's mixture head (``continuous.head="mixture"``, 16
components); MAR's truncated-normal mask ratios; label dropout 0.1 for
guidance. Variants ``default`` and ``tiny`` (tests). Set
``--config.tokenizer_checkpoint=VAE_WORKDIR`` and
``--config.data.name=latents:LATENTS.npz`` (``pretokenize`` on the VAE).
The sampling settings are starting points, not measured choices.

``config.model`` holds exactly the body's fields; ``config.continuous`` the
objective's; ``config.sampling`` the decode's (previews, Generator).
"""

import ml_collections

from maskgit_jax.decoding import continuous_options
from maskgit_jax.presets import common
from maskgit_jax.presets import maskgit_animal_mnist
from maskgit_jax.presets import vae_animal_mnist

VARIANTS = ("default", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = maskgit_animal_mnist.get_config(variant)
  config.stage = "continuous"
  old = config.model
  config.model = ml_collections.ConfigDict(dict(
      channels=vae_animal_mnist.get_config(variant).model.embedding_dim,
      num_classes=old.num_classes, num_tokens=common.token_count(config),
      hidden_size=old.hidden_size, num_layers=old.num_layers,
      num_heads=old.num_heads, mlp_dim=old.mlp_dim, dropout_rate=0.1,
      attention_dropout_rate=0.1))
  config.continuous = ml_collections.ConfigDict(dict(
      head="diffusion", head_width=256, head_depth=3, num_mixtures=16,
      num_levels=1000, batch_mul=4, mask_ratio="mar",
      label_dropout=config.masking.label_dropout))
  del config.masking
  del config.decode
  config.sampling = continuous_options.config_section(num_iter=16,
                                                    steps=100)
  config.data.name = "latents:demo_out/latents_train.npz"
  # 1 / std of the cached latents: the loop records the file's.
  config.latent_scale = ml_collections.config_dict.placeholder(float)
  if variant == "tiny":
    config.continuous.update(head_width=16, head_depth=1, num_mixtures=2,
                             num_levels=50, batch_mul=2, label_dropout=0.1)
    config.sampling.update(num_iter=2, steps=5, cfg_scale=1.0, clip_x0=5.0)
  return config
