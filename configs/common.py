"""Defaults shared by every config: seed, device mesh, logical axis rules.

Mesh axes are ('data', 'fsdp', 'model'). Parameters and activations are
annotated with logical axis names in the models; the rules below map those
names to mesh axes. For each logical name the first rule whose mesh axis is
still free in that array is used, so ``embed -> fsdp`` shards parameters
(FSDP) while activations, whose batch already takes 'fsdp', keep ``embed``
replicated.
"""

import ml_collections

# Logical name -> mesh axis (or tuple of axes, or None for replicated).
LOGICAL_AXIS_RULES = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("pos", None),
    ("vocab", "model"),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("norm", None),
    ("codebook", None),
    ("code_dim", None),
    # Convolutional models (tokenizer, discriminator).
    ("height", None),
    ("width", None),
    ("conv_in", None),
    ("conv_out", "model"),
)


def get_config() -> ml_collections.ConfigDict:
  """Runtime defaults every stage shares."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Sizes of the ('data', 'fsdp', 'model') mesh axes; one may be -1 (all the
  # devices the others leave).
  config.mesh_shape = (-1, 1, 1)
  config.logical_axis_rules = LOGICAL_AXIS_RULES
  return config
