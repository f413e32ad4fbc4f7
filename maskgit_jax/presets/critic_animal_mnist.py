"""A token critic of the demo's transformer (animal-MNIST, 8x8 tokens).

Variants: ``default`` (a 2-layer critic body, label ``changed``, 2,000
steps), ``self`` (the
self-critic: a one-unit head on the generator's own hidden states) and
``tiny`` (for tests). Set ``--config.generator_checkpoint=STAGE_2_WORKDIR``
(``demo_out/maskgit``); data as the transformer's (``--config.data.name=
tokens:demo_out/tokens_train.npz`` reads the demo's cached tokens).
"""

import ml_collections

from maskgit_jax.presets import maskgit_animal_mnist
from maskgit_jax.presets import common

VARIANTS = ("default", "self", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = common.check_variant(arg, VARIANTS)
  config = maskgit_animal_mnist.get_config(
      "tiny" if variant == "tiny" else "default")
  config.stage = "critic"
  config.variant = variant
  config.generator_checkpoint = ml_collections.config_dict.placeholder(str)
  # The critic's own body; codebook, classes and positions come from the
  # generator. Unused by the self-critic.
  config.model.update(num_layers=2, dropout_rate=0.1,
                      attention_dropout_rate=0.1)
  config.critic = ml_collections.ConfigDict(dict(
      self_critic=variant == "self",
      # "resampled": the paper's label (1 wherever the generator refilled);
      # "changed": lucidrains' (1 where the refill differs from the real).
      # On the long demo model "resampled" barely left a constant guess
      # (accuracy 0.650 against a share of 0.637 after 1,000 steps);
      # "changed" learned more (0.67-0.70 against 0.49-0.61 after 2,000).
      label="changed",
      temperature=1.0,  # of the generator's fills
  ))
  config.masking.update(label_dropout=0.0)  # the critic sees real labels
  config.optimizer.update(learning_rate=1e-3, warmup_steps=100)
  config.update(num_train_steps=2000, checkpoint_every_steps=1000,
                preview_every_steps=1000)
  if variant == "tiny":
    config.update(num_train_steps=4, log_every_steps=2,
                  checkpoint_every_steps=2, preview_every_steps=2)
    config.optimizer.update(warmup_steps=1)
  return config
