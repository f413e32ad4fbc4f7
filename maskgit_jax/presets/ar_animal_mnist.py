"""The autoregressive prior on animal-MNIST: VQGAN's stage 2, next to MaskGIT.

The demo transformer's size and budget (hidden 128, 4 layers, 4 heads, MLP
512; batch 64; 1,450 steps), causal instead of bidirectional, on the same
tokens. Variants
``default``, ``long`` (the long demo's 4,000 steps, dropout 0.1) and
``tiny`` (tests). Set ``--config.tokenizer_checkpoint=STAGE_1_WORKDIR`` and
``--config.data.name=tokens:demo_out/tokens_train.npz`` (or leave the
images and let the frozen tokenizer encode them).

``config.model`` holds exactly the fields of
:class:`maskgit_jax.models.causal_transformer.CausalTransformer`;
``config.ar`` the training settings; ``config.sampling`` the sampling
defaults (``top_k`` 0 and ``top_p`` 1.0 mean off).
"""

import ml_collections

from maskgit_jax.presets import maskgit_animal_mnist
from maskgit_jax.presets import common

VARIANTS = ("default", "long", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = maskgit_animal_mnist.get_config(variant)
  config.stage = "ar"
  old = config.model
  config.model = ml_collections.ConfigDict(dict(
      codebook_size=old.codebook_size, num_classes=old.num_classes,
      num_tokens=common.token_count(config), hidden_size=old.hidden_size,
      num_layers=old.num_layers, num_heads=old.num_heads,
      mlp_dim=old.mlp_dim, dropout_rate=old.dropout_rate,
      attention_dropout_rate=old.attention_dropout_rate))
  config.ar = ml_collections.ConfigDict(dict(
      label_dropout=config.masking.label_dropout, label_smoothing=0.0))
  del config.masking
  del config.decode
  config.sampling = ml_collections.ConfigDict(dict(
      temperature=1.0, top_k=0, top_p=1.0,
      cfg_scale=1.0 if config.ar.label_dropout else 0.0))
  return config
