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
    # The released vocabulary (2025 = 1024 + 1000 + 1) is odd: it cannot be
    # split evenly, so the embedding table is sharded along 'embed' only.
    ("vocab", None),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("projection", None),  # MAGE-C's projector output
    ("norm", None),
    ("codebook", None),
    ("code_dim", None),
    # Convolutional models (tokenizer, discriminator).
    ("height", None),
    ("width", None),
    ("conv_in", None),
    ("conv_out", "model"),
)


def check_variant(arg: str | None, variants: tuple[str, ...]) -> str:
  """``arg``, or the first (default) of ``variants`` when it is empty.

  Raises:
    ValueError: naming the variant and the ones there are.
  """
  variant = arg or variants[0]
  if variant not in variants:
    raise ValueError(f"unknown variant {variant!r}; expected one of {variants}")
  return variant


def override(config: ml_collections.ConfigDict, overrides: dict
             ) -> ml_collections.ConfigDict:
  """Sets ``{"a.b.c": value}`` fields of ``config`` in place; returns it.

  Raises:
    KeyError: a section on the path does not exist.
  """
  for key, value in overrides.items():
    *path, leaf = key.split(".")
    section = config
    for part in path:
      section = section[part]
    section[leaf] = value
  return config


def token_count(config: ml_collections.ConfigDict
                ) -> ml_collections.FieldReference:
  """``(image_size // token_factor) ** 2``, kept up to date: a reference, so
  ``--config.image_size=128`` resizes the position table with it."""
  grid = config.get_ref("image_size") // config.get_ref("token_factor")
  return grid * grid


def get_config() -> ml_collections.ConfigDict:
  """Runtime defaults every stage shares."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Fine-tuning: a workdir (ours or an imported official one) whose weights
  # seed a fresh run (trainers/warm_start.py); ignored when resuming.
  config.init_from = ""
  # Sizes of the ('data', 'fsdp', 'model') mesh axes; one may be -1 (all the
  # devices the others leave).
  config.mesh_shape = (-1, 1, 1)
  config.logical_axis_rules = LOGICAL_AXIS_RULES

  # Training loop (trainers/loop.py).
  config.batch_size = 256  # global, over all processes
  config.num_train_steps = 100_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.preview_every_steps = 5000  # 0 disables preview images

  # Data (input_pipeline.py): "animal_mnist", "tfds:<name>" or "folder:<path>".
  config.data = ml_collections.ConfigDict(dict(
      name="tfds:imagenet2012",
      split="train",
      data_dir=ml_collections.config_dict.placeholder(str),
      min_scale=0.08,  # random-resized-crop area share; 1.0 disables cropping
      flip=True,
  ))
  return config
