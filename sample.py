"""Samples or edits images with a trained (or imported) MaskGIT checkpoint.

    python sample.py --checkpoint=runs/maskgit --labels=3,7 --output=grid.png
    python sample.py --checkpoint=gs://BUCKET/maskgit --num_samples=50000 \
        --output_dir=gs://BUCKET/samples --output_npz=samples.npz  # for FID
    python sample.py --pretrained=imagenet256 --labels=goldfish,207 \
        --output=grid.png
    python sample.py --checkpoint=runs/maskgit --task=inpaint \
        --image=cat.png --mask=mask.png --label=3 --output=filled.png
    python sample.py --checkpoint=runs/maskgit --task=edit --image=cat.png \
        --box=8,8,16,16 --label=5 --output=edited.png
    python sample.py --checkpoint=runs/maskgit --task=outpaint \
        --image=cat.png --extend=8 --label=3 --output=bigger.png
    python sample.py --checkpoint=runs/maskgit --task=panorama \
        --image=cat.png --width=128 --label=3 --output=wide.png
    python sample.py --checkpoint=runs/ar --labels=3,7 --top_k=50 \
        --output=grid.png                 # an autoregressive prior ("ar")
    python sample.py --checkpoint=runs/ar --task=complete --image=cat.png \
        --keep_rows=4 --label=3 --output=completed.png

An autoregressive prior's checkpoint (``config.stage = "ar"``) takes
``--temperature``, ``--top_k``, ``--top_p`` and ``--cfg_scale``; its only
edits are ``--task=complete`` and an ``inpaint`` mask over the bottom rows.
A continuous-token checkpoint (``config.stage = "continuous"``: MAR's
diffusion head, GIVT's mixture head) takes every task but ``complete`` and
its own options (``--steps``, ``--clip_x0``, ``--order=random|density``, ...;
maskgit_jax.decoding.continuous_options); ``tokens`` are then its float32
latents [N, h, w, C].

Files are in ADM's layout, what the standard FID evaluator reads:
``arr_0`` uint8 images [N, H, W, 3] and ``arr_1`` int32 labels [N] (plus
``tokens`` [N, h, w] when generating ``--labels``).

``--num_samples`` (class-balanced: sample i has label i % classes) streams:
each batch is decoded and written as it comes into shards of
``--shard_size`` in ``--output_dir`` (default: ``OUTPUT_NPZ.shards``, removed
after the merge), so host memory stays a few batches whatever N is; a
re-run resumes, skipping finished shards; on a pod slice every host writes
its share; ``--output_npz`` then merges the shards into one file. Paths
may be local or ``gs://``.
"""

import sys

from absl import flags

from maskgit_jax.runtime import cli
from maskgit_jax.decoding.continuous_options import ContinuousOptions
from maskgit_jax.decoding.decode_options import DecodeOptions

TASKS = ("generate", "inpaint", "outpaint", "edit", "panorama", "complete")

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Stage-2 workdir or imported checkpoint directory.")
_PRETRAINED = flags.DEFINE_enum(
    "pretrained", None, ["imagenet256", "imagenet512"], "Instead of "
    "--checkpoint: a released ImageNet model, imported once into "
    "$MASKGIT_JAX_CACHE (default ~/.cache/maskgit_jax).")
_TASK = flags.DEFINE_enum("task", "generate", TASKS, "What to do.")
_LABELS = flags.DEFINE_list("labels", None, "Classes to generate: 3,7 (for "
                            "an ImageNet model also names: goldfish,tabby).")
_NUM_SAMPLES = flags.DEFINE_integer(
    "num_samples", None, "Number of class-balanced samples (instead of "
    "--labels).")
# One flag per decode option of MaskGIT (maskgit_jax.decoding.decode_options)
# and of a continuous-token model (maskgit_jax.decoding.continuous_options),
# unset by default: an unset flag keeps the checkpoint's value. A name both
# declare is one flag (its choices the union).
_DECODE_FLAGS = {}


def _define_option_flags(*option_classes):
  fields = {}
  for option_class in option_classes:
    for field in option_class.fields():
      fields.setdefault(field.name, []).append(field)
  for name, same in fields.items():
    meta = same[0].metadata
    helps = " / ".join(dict.fromkeys(f.metadata["help"] for f in same))
    help_text = f"{helps} (default: the checkpoint's)."
    if meta["choices"]:
      choices = list(dict.fromkeys(c for f in same
                                   for c in f.metadata["choices"]))
      _DECODE_FLAGS[name] = flags.DEFINE_enum(name, None, choices, help_text)
    else:
      kind = same[0].type.split(" |")[0]
      _DECODE_FLAGS[name] = {
          "int": flags.DEFINE_integer, "float": flags.DEFINE_float,
          "bool": flags.DEFINE_boolean, "str": flags.DEFINE_string,
      }[kind](name, None, help_text)


_define_option_flags(DecodeOptions, ContinuousOptions)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the "
                             "latest).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "--num_samples: the folder of resumable ADM shards.")
_SHARD_SIZE = flags.DEFINE_integer("shard_size", 1000,
                                   "--num_samples: images per shard file.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Images per batch.")
_USE_EMA = flags.DEFINE_boolean("use_ema", True, "Use the EMA params.")
_CRITIC = flags.DEFINE_string(
    "critic", None, "A token critic's workdir (train.py with configs/"
    "critic_animal_mnist.py), used by --order=critic.")
_PRECISION = flags.DEFINE_enum(
    "precision", "float32", ["float32", "bfloat16", "bfloat16_matmul"],
    "The transformer's precision: float32 (the official numerics), bfloat16 "
    "(parameters and activations) or bfloat16_matmul (products only); "
    "logits and sampling stay float32.")
_OUTPUT = flags.DEFINE_string("output", None, "PNG: a grid or the edit.")
_OUTPUT_NPZ = flags.DEFINE_string("output_npz", None, "NPZ of the results.")
_COLUMNS = flags.DEFINE_integer("columns", 8, "Columns of the --output grid.")
_IMAGE = flags.DEFINE_string("image", None, "Input image (editing tasks).")
_MASK = flags.DEFINE_string("mask", None, "Mask PNG, white = regenerate.")
_BOX = flags.DEFINE_list("box", None, "Edit box: top,left,height,width.")
_LABEL = flags.DEFINE_integer("label", None, "Class for editing tasks.")
_EXTEND = flags.DEFINE_list(
    "extend", None, "Outpaint margin: one value or top,bottom,left,right.")
_WIDTH = flags.DEFINE_integer("width", None, "Panorama width in pixels.")
_KEEP_ROWS = flags.DEFINE_integer(
    "keep_rows", None, "--task=complete: token rows kept at the top (the "
    "rest is sampled).")


def _ints(values, name):
  try:
    return [int(v) for v in values]
  except ValueError:
    raise ValueError(f"--{name} must be integers separated by commas, got "
                     f"{','.join(values)}") from None


def _labels(values, num_classes: int) -> list[int]:
  """--labels as ids; ImageNet class names too for a 1,000-class model."""
  if num_classes != 1000 or all(v.strip().lstrip("-").isdigit()
                                for v in values):
    return _ints(values, "labels")
  from maskgit_jax.data import imagenet_classes  # pylint: disable=g-import-not-at-top
  try:
    return [int(v) if v.strip().isdigit() else imagenet_classes.class_id(v)
            for v in values]
  except KeyError as e:
    raise ValueError(f"--labels: {e.args[0]}") from None


def _require(flag, task):
  if flag.value is None:
    raise ValueError(f"--task={task} needs --{flag.name}")
  return flag.value


def _options() -> dict:
  """The decode options given on the command line (None: the default)."""
  return {name: flag.value for name, flag in _DECODE_FLAGS.items()}


def _generator_options(generator) -> dict:
  """The command line's options that this generator takes (its
  ``defaults``' fields); a set flag it does not take is refused."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  if isinstance(generator, sampling.ARGenerator):
    if _TASK.value in ("edit", "outpaint", "panorama"):
      raise ValueError(f"--task={_TASK.value} needs a bidirectional model; "
                       "an autoregressive prior completes the end of a "
                       "sequence (--task=complete, or inpaint a bottom mask)")
  elif _TASK.value == "complete":
    raise ValueError("--task=complete is for autoregressive priors; MaskGIT "
                     "fills any mask (--task=inpaint)")
  taken = [f.name for f in dataclasses.fields(generator.defaults)]
  given = _options()
  extra = sorted(k for k, v in given.items() if v is not None
                 and k not in taken)
  if extra:
    raise ValueError(f"--{extra[0]} is not an option of this checkpoint's "
                     f"{type(generator).__name__}; it takes --"
                     + ", --".join(taken))
  return {k: given[k] for k in taken}


def _run(generator, options, progress):
  """Runs --task; returns (images uint8 [N, H, W, 3], labels, tokens|None)."""
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  task, seed = _TASK.value, _SEED.value
  if task == "generate":
    samples = generator.sample(_labels(_LABELS.value, generator.num_classes),
                               seed=seed,
                               progress=progress, **options)
    return samples.images, samples.labels, samples.tokens
  image = imageio.read_image(_require(_IMAGE, task))
  label = _LABEL.value
  if task == "inpaint":
    result = generator.inpaint(image, imageio.read_mask(_require(_MASK, task)),
                               label=label, seed=seed, **options)
  elif task == "edit":
    box = _ints(_require(_BOX, task), "box")
    if len(box) != 4:
      raise ValueError(f"--box must be top,left,height,width, got {box}")
    result = generator.edit(image, box, label=_require(_LABEL, task),
                            seed=seed, **options)
  elif task == "complete":
    result = generator.complete(image, _require(_KEEP_ROWS, task),
                                label=label, seed=seed, **options)
  elif task == "outpaint":
    extend = _ints(_require(_EXTEND, task), "extend")
    if len(extend) not in (1, 4):
      raise ValueError(f"--extend takes 1 or 4 values, got {extend}")
    result = generator.outpaint(image, extend[0] if len(extend) == 1
                                else extend, label=label, seed=seed, **options)
  else:
    result = generator.panorama(image, _require(_WIDTH, task), label=label,
                                seed=seed, **options)
  labels = np.full((1,), -1 if label is None else label, np.int32)
  return result[None], labels, None


def _sample_many(generator, options, progress):
  """--num_samples: ADM shards, then the merge on process 0.

  Returns:
    Up to 64 of the first images for the --output grid (None without
    --output, and on processes other than 0).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import storage  # pylint: disable=g-import-not-at-top
  from maskgit_jax.inference import sample_files  # pylint: disable=g-import-not-at-top
  out = _OUTPUT_DIR.value or f"{_OUTPUT_NPZ.value}.shards"
  counts = sample_files.write_shards(
      generator, out, _NUM_SAMPLES.value, seed=_SEED.value,
      shard_size=_SHARD_SIZE.value, process_index=jax.process_index(),
      process_count=jax.process_count(), progress=progress,
      describe={"checkpoint": _CHECKPOINT.value, "step": _STEP.value,
                "use_ema": _USE_EMA.value, "precision": _PRECISION.value},
      **options)
  print(f"{out}: wrote {counts['written']} shards, {counts['skipped']} were "
        "there already", file=sys.stderr)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("sample.py: every shard written")
  if jax.process_index() != 0:
    return None
  first = None
  if _OUTPUT.value:  # read before the merge may remove the shards
    first = storage.load_npz(sample_files.shard_files(out)[0])["arr_0"][:64]
  if _OUTPUT_NPZ.value:
    merged = sample_files.merge(out, _OUTPUT_NPZ.value)
    print(f"wrote {_NUM_SAMPLES.value} images to {merged}")
    if not _OUTPUT_DIR.value:
      storage.path(out).rmtree()
  return first


def _check_outputs():
  """Refuses a command line that would write nothing or mix modes."""
  many = _TASK.value == "generate" and _NUM_SAMPLES.value is not None
  if _TASK.value == "generate" and (_LABELS.value is None) == (not many):
    raise ValueError("pass exactly one of --labels and --num_samples")
  if many and _NUM_SAMPLES.value < 1:
    raise ValueError(f"--num_samples must be positive, got "
                     f"{_NUM_SAMPLES.value}")
  if _SHARD_SIZE.value < 1:
    raise ValueError(f"--shard_size must be positive, got {_SHARD_SIZE.value}")
  if _OUTPUT_DIR.value and not many:
    raise ValueError("--output_dir is for --num_samples")
  if not (_OUTPUT.value or _OUTPUT_NPZ.value or _OUTPUT_DIR.value):
    raise ValueError("pass --output (PNG), --output_npz and/or --output_dir")
  if many and not (_OUTPUT_NPZ.value or _OUTPUT_DIR.value):
    raise ValueError("--num_samples writes --output_dir and/or --output_npz")
  return many


def main(argv):
  del argv  # cli.run refuses stray arguments
  import tqdm  # pylint: disable=g-import-not-at-top
  from maskgit_jax.data import imageio  # pylint: disable=g-import-not-at-top
  from maskgit_jax import sampling  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from maskgit_jax.runtime import storage  # pylint: disable=g-import-not-at-top
  if (_CHECKPOINT.value is None) == (_PRETRAINED.value is None):
    raise ValueError("pass one of --checkpoint and --pretrained")
  many = _check_outputs()
  sharding.maybe_initialize_distributed()
  checkpoint = _CHECKPOINT.value
  if _PRETRAINED.value:
    from maskgit_jax.runtime import official  # pylint: disable=g-import-not-at-top
    checkpoint = official.fetch_released(_PRETRAINED.value)
  generator = sampling.load(
      checkpoint, use_ema=_USE_EMA.value, step=_STEP.value,
      batch_size=_BATCH_SIZE.value, precision=_PRECISION.value,
      critic=_CRITIC.value)
  with tqdm.tqdm(unit="img", desc=_TASK.value, file=sys.stderr,
                 disable=None) as bar:
    def progress(done, total):
      bar.total = total
      bar.update(done - bar.n)
    options = _generator_options(generator)
    if many:
      images = _sample_many(generator, options, progress)
    else:
      images, labels, tokens = _run(generator, options, progress)
  if images is None:
    return  # written already (or by process 0); no grid to draw here
  if _OUTPUT_NPZ.value and not many:
    arrays = {"arr_0": images, "arr_1": labels}
    if tokens is not None:
      arrays["tokens"] = tokens
    storage.save_npz(_OUTPUT_NPZ.value, arrays)
    print(f"wrote {len(images)} images to {_OUTPUT_NPZ.value}")
  if _OUTPUT.value:
    picture = (images[0] if len(images) == 1 else
               imageio.image_grid(images, min(_COLUMNS.value, len(images))))
    imageio.write_image(_OUTPUT.value, picture)
    print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
  cli.run(main)
